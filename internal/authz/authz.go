// Package authz decides what an authenticated principal may do: the
// route's requirements (scopes, roles, claim values), which run after
// authentication and the consumer and route rate limits and before
// request validation, so that an unauthorized caller learns nothing about
// the schema; and the object-level rules (authorize, CEL rules compiled by
// package rules), which run after request validation, so that they read
// the body it decoded, and before the proxy (DESIGN.md).
package authz
