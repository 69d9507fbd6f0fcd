package edge

import (
	"net/netip"
	"strings"
)

// ClientIP returns the client address of a request whose socket peer is
// remoteAddr (http.Request.RemoteAddr, "ip:port") and whose
// X-Forwarded-For header lines are xff. Addresses are compared unmapped
// (IPv4-mapped IPv6 becomes IPv4) and without zone.
//
// Only a peer inside trusted may speak for someone else: then the hops of
// X-Forwarded-For (all lines, comma-separated) are walked right to left,
// skipping hops inside trusted, and the first untrusted hop is the client.
// If every hop is trusted, it is the left-most one. A hop that does not
// parse stops the walk and the last trusted address seen is used: an
// attacker controls everything to the left of the first hop that a
// trusted proxy wrote. A peer outside trusted is the client, whatever it
// sent. The zero Addr is returned when remoteAddr does not parse.
func ClientIP(remoteAddr string, xff []string, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(remoteAddr)
	if !contains(trusted, peer) {
		return peer
	}
	return walkForwarded(peer, xff, trusted)
}

// peerAddr parses a RemoteAddr ("ip:port", or a bare ip set by some test
// harnesses); the zero Addr when it does not parse.
func peerAddr(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return normalizeAddr(ap.Addr())
	}
	if a, err := netip.ParseAddr(remoteAddr); err == nil {
		return normalizeAddr(a)
	}
	return netip.Addr{}
}

func normalizeAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// contains reports whether a is inside one of the prefixes. The zero Addr
// is inside none.
func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// walkForwarded walks the X-Forwarded-For hops right to left, starting
// from a trusted peer; see ClientIP.
func walkForwarded(peer netip.Addr, xff []string, trusted []netip.Prefix) netip.Addr {
	last := peer
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			var hop string
			if c := strings.LastIndexByte(line, ','); c >= 0 {
				hop, line = line[c+1:], line[:c]
			} else {
				hop, line = line, ""
			}
			hop = trimOWS(hop)
			if hop == "" {
				continue // empty list elements are allowed and ignored (RFC 9110 §5.6.1.2)
			}
			a, ok := parseHop(hop)
			if !ok {
				return last
			}
			if !contains(trusted, a) {
				return a
			}
			last = a
		}
	}
	return last
}

// parseHop parses one X-Forwarded-For element: an address, or an address
// with a port ("192.0.2.1:4711", "[2001:db8::1]:4711") as some proxies
// write it.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return normalizeAddr(a), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalizeAddr(ap.Addr()), true
	}
	return netip.Addr{}, false
}

// trimOWS trims the optional whitespace of HTTP lists (space and tab).
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
