package validate

import (
	"net/http"
	"strconv"
)

// ValidateResponse checks an upstream response: the status must be declared (or covered
// by "2XX"-style ranges or "default"), the Content-Type must be one the response
// declares content for, and a body is validated against its schema. It decodes the body
// itself with DecodeJSON. It returns nil or a *Violation with Status 502.
func (o *Operation) ValidateResponse(status int, header http.Header, body []byte) error {
	ms := o.responseFor(status)
	if ms == nil {
		return &Violation{
			Status: http.StatusBadGateway,
			Reason: ReasonUndeclaredStatus,
			In:     "response",
			Field:  "status",
			Rule:   "responses",
			Detail: "response status " + strconv.Itoa(status) + " is not declared",
		}
	}
	if ms.empty || len(body) == 0 {
		// No content declared: nothing to check the body against. An empty body (HEAD,
		// 204-like answers) has no Content-Type to check either.
		return nil
	}
	ct := header.Get("Content-Type")
	m := ms.match(ct)
	if m == nil {
		return &Violation{
			Status: http.StatusBadGateway,
			Reason: ReasonResponseContentType,
			In:     "response",
			Field:  "Content-Type",
			Rule:   "content",
			Detail: "the response's Content-Type is not one the operation declares",
		}
	}
	if m.schema == nil {
		return nil
	}
	value, skip, v := decodeBody(m, ct, body, nil, header, "response")
	if v != nil {
		v.Status = http.StatusBadGateway
		return v
	}
	if skip {
		return nil
	}
	if err := m.check(value); err != nil {
		v := schemaViolation(err, "response", ReasonResponseSchema)
		v.Status = http.StatusBadGateway
		return v
	}
	if m.ints != nil {
		if tokens, rule, bad := inexactInt(m.ints, value, make([]string, 0, 16), 0); bad {
			field := pointer(tokens)
			return &Violation{Status: http.StatusBadGateway, Reason: ReasonResponseSchema, In: "response", Field: field,
				Rule: rule, Detail: describe("response", field, rule)}
		}
	}
	return nil
}

func (o *Operation) responseFor(status int) *mediaSet {
	if ms := o.responses[status]; ms != nil {
		return ms
	}
	if c := status / 100; c >= 1 && c <= 5 && o.ranges[c] != nil {
		return o.ranges[c]
	}
	return o.dflt
}
