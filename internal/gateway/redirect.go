package gateway

import (
	"net"
	"net/http"
	"strings"

	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// redirectHandler answers every plain-HTTP request with a permanent
// redirect to the same host and request target over HTTPS (308, so the
// method and body are kept). Nothing is proxied from this listener.
func redirectHandler(port string, pw *problem.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !validHost(host) || !strings.HasPrefix(r.RequestURI, "/") {
			pw.Write(w, r, problem.BadHost())
			return
		}
		if strings.Contains(host, ":") { // an IPv6 literal
			host = "[" + host + "]"
		}
		if port != "" {
			host += ":" + port
		}
		w.Header().Set("Location", "https://"+host+r.RequestURI)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}

// validHost accepts DNS names and IP literals, nothing that could turn the
// Location into another URL.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == ':':
		default:
			return false
		}
	}
	return true
}
