package config

import (
	"net/url"
	"strconv"
)

func (c *checker) checkTracing() {
	t := c.cfg.Tracing
	if t == nil {
		return
	}
	const p = "tracing"
	if t.OTLP == nil {
		c.errf(p, "needs an otlp section: the receiver spans are exported to")
		return
	}
	switch t.SampleRatio {
	case "all", "none":
	default:
		// !(f >= 0 && f <= 1) also refuses NaN, which ParseFloat accepts.
		if f, err := strconv.ParseFloat(string(t.SampleRatio), 64); err != nil || !(f >= 0 && f <= 1) {
			c.errf(p+".sample_ratio", "must be all, none or a ratio between 0 and 1 such as 0.1")
		}
	}
	if t.ServiceName == "" {
		c.errf(p+".service_name", "must not be empty")
	}
	if u, err := url.Parse(t.OTLP.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.errf(p+".otlp.endpoint", "must be an http or https URL such as http://127.0.0.1:4318")
	} else if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		c.errf(p+".otlp.endpoint", "must not have user info, a query or a fragment")
	}
	if t.OTLP.Timeout <= 0 {
		c.errf(p+".otlp.timeout", "must be greater than 0")
	}
	for name := range t.OTLP.Headers {
		if !isToken(name) {
			c.keyErrf(p+".otlp.headers."+name, "not a valid header name")
		}
	}
}
