// Package authz decides what an authenticated principal may do: the
// route's requirements (scopes, roles, claim values), which run after
// authentication and the consumer and route rate limits and before
// request validation, so that an unauthorized caller learns nothing about
// the schema; the object-level rules and writable fields (authorize, CEL
// rules compiled by package rules), which run after request validation,
// so that they read the body it decoded, and before the proxy; and the
// response rules, a response stage between response validation and
// filtering; and enumeration detection (Enumerate, over a Detector that
// outlives reloads), which wraps request validation and the object-level
// stages to refuse a blocked principal first and count their denials
// last (DESIGN.md).
package authz
