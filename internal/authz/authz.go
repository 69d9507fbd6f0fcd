// Package authz decides what an authenticated principal may do: the
// route's requirements (scopes, roles, claim values). Object-level rules
// and policy hooks will join it. It runs after authentication and the
// consumer and route rate limits, and before request validation, so that
// an unauthorized caller learns nothing about the schema (DESIGN.md).
package authz
