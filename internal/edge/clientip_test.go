package edge

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{name: "untrusted peer, no header", remote: "198.51.100.1:4711", trusted: proxies, want: "198.51.100.1"},
		{name: "untrusted peer spoofs XFF", remote: "198.51.100.1:4711", xff: []string{"203.0.113.9"}, trusted: proxies, want: "198.51.100.1"},
		{name: "no trusted proxies at all", remote: "10.0.0.1:4711", xff: []string{"203.0.113.9"}, want: "10.0.0.1"},
		{name: "trusted peer, one hop", remote: "10.0.0.1:4711", xff: []string{"203.0.113.9"}, trusted: proxies, want: "203.0.113.9"},
		{name: "trusted peer, client-forged left part", remote: "10.0.0.1:4711", xff: []string{"1.2.3.4, 203.0.113.9"}, trusted: proxies, want: "203.0.113.9"},
		{name: "trusted chain skipped", remote: "10.0.0.1:4711", xff: []string{"203.0.113.9, 10.1.1.1, 10.2.2.2"}, trusted: proxies, want: "203.0.113.9"},
		{name: "several header lines", remote: "10.0.0.1:4711", xff: []string{"1.2.3.4", "203.0.113.9, 10.1.1.1"}, trusted: proxies, want: "203.0.113.9"},
		{name: "every hop trusted", remote: "10.0.0.1:4711", xff: []string{"10.3.3.3, 10.2.2.2"}, trusted: proxies, want: "10.3.3.3"},
		{name: "trusted peer, empty header", remote: "10.0.0.1:4711", xff: []string{""}, trusted: proxies, want: "10.0.0.1"},
		{name: "garbage stops the walk", remote: "10.0.0.1:4711", xff: []string{"203.0.113.9, garbage, 10.1.1.1"}, trusted: proxies, want: "10.1.1.1"},
		{name: "garbage right next to the peer", remote: "10.0.0.1:4711", xff: []string{"203.0.113.9, unknown"}, trusted: proxies, want: "10.0.0.1"},
		{name: "empty list elements ignored", remote: "10.0.0.1:4711", xff: []string{"203.0.113.9,, 10.1.1.1 ,"}, trusted: proxies, want: "203.0.113.9"},
		{name: "hop with port", remote: "10.0.0.1:4711", xff: []string{"203.0.113.9:5555"}, trusted: proxies, want: "203.0.113.9"},
		{name: "IPv6 hop with port", remote: "10.0.0.1:4711", xff: []string{"[2001:db8::7]:5555"}, trusted: proxies, want: "2001:db8::7"},
		{name: "IPv4-mapped peer is unmapped", remote: "[::ffff:10.0.0.1]:4711", xff: []string{"203.0.113.9"}, trusted: proxies, want: "203.0.113.9"},
		{name: "IPv4-mapped hop is unmapped", remote: "10.0.0.1:4711", xff: []string{"::ffff:10.1.1.1, ::ffff:203.0.113.9"}, trusted: proxies, want: "203.0.113.9"},
		{name: "IPv6 trusted peer", remote: "[2001:db8:ffff::1]:4711", xff: []string{"2001:db8::9"}, trusted: proxies, want: "2001:db8::9"},
		{name: "zone dropped", remote: "[fe80::1%eth0]:4711", want: "fe80::1"},
		{name: "unparsable remote", remote: "pipe", xff: []string{"203.0.113.9"}, trusted: proxies, want: "invalid IP"},
		{name: "bare address remote", remote: "10.0.0.1", xff: []string{"203.0.113.9"}, trusted: proxies, want: "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClientIP(tt.remote, tt.xff, tt.trusted).String(); got != tt.want {
				t.Errorf("ClientIP(%q, %q) = %s, want %s", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}

// TestClientIPOnTheWire checks the record's client address for requests
// written by hand from 127.0.0.1, trusted or not.
func TestClientIPOnTheWire(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		xff     string // header lines, CRLF-separated
		want    string
	}{
		{name: "spoofed XFF from an untrusted peer", trusted: []string{"10.0.0.0/8"},
			xff: "X-Forwarded-For: 203.0.113.9\r\n", want: "127.0.0.1"},
		{name: "trusted proxy chain", trusted: []string{"127.0.0.0/8", "10.0.0.0/8"},
			xff: "X-Forwarded-For: 1.2.3.4, 203.0.113.9\r\nX-Forwarded-For: 10.0.0.7\r\n", want: "203.0.113.9"},
		{name: "trusted proxy, garbage hop", trusted: []string{"127.0.0.0/8", "10.0.0.0/8"},
			xff: "X-Forwarded-For: 203.0.113.9, <script>, 10.0.0.7\r\n", want: "10.0.0.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testServerConfig()
			for _, p := range tt.trusted {
				cfg.TrustedProxies = append(cfg.TrustedProxies, netip.MustParsePrefix(p))
			}
			h := startHarness(t, harnessOptions{cfg: cfg})
			c := dialRaw(t, hostPort(h.gw))
			resp, _ := c.roundTrip(t, "GET /orders HTTP/1.1\r\nHost: gw\r\n"+tt.xff+"\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			if got := h.rec.lastSeen().ClientIP.String(); got != tt.want {
				t.Errorf("record ClientIP = %s, want %s", got, tt.want)
			}
			if ups := h.up.requests(); len(ups) != 1 || ups[0].Header.Get("X-Forwarded-For") != "" {
				t.Errorf("upstream got the client's X-Forwarded-For, want it stripped")
			}
		})
	}
}

func FuzzClientIP(f *testing.F) {
	seeds := []struct{ remote, xff string }{
		{"198.51.100.1:4711", ""},                           // untrusted peer, no header
		{"198.51.100.1:4711", "203.0.113.9"},                // untrusted peer spoofing
		{"10.0.0.1:4711", "203.0.113.9"},                    // trusted peer, one hop
		{"10.0.0.1:4711", "1.2.3.4, 203.0.113.9, 10.1.1.1"}, // chain with a trusted hop
		{"10.0.0.1:4711", "10.3.3.3,10.2.2.2"},              // every hop trusted
		{"10.0.0.1:4711", "203.0.113.9, garbage, 10.1.1.1"}, // garbage stops the walk
		{"10.0.0.1:4711", ",,\t, "},                         // only empty elements
		{"[::ffff:10.0.0.1]:80", "::ffff:203.0.113.9"},      // IPv4-mapped peer and hop
		{"[2001:db8:ffff::1]:80", "[2001:db8::7]:5555"},     // IPv6 with ports
		{"[fe80::1%eth0]:80", "fe80::2%eth1"},               // zones
		{"pipe", "203.0.113.9"},                             // unparsable peer
		{"10.0.0.1:4711", "203.0.113.9\n10.1.1.1"},          // two header lines (split on \n below)
	}
	for _, s := range seeds {
		f.Add(s.remote, s.xff)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		lines := strings.Split(xff, "\n")
		got := ClientIP(remote, lines, trusted)
		peer := peerAddr(remote)
		if !contains(trusted, peer) {
			if got != peer {
				t.Fatalf("ClientIP(%q, %q) = %v from an untrusted peer, want the peer %v", remote, lines, got, peer)
			}
			return
		}
		if got == peer {
			return
		}
		for _, line := range lines {
			for _, hop := range strings.Split(line, ",") {
				if a, ok := parseHop(trimOWS(hop)); ok && a == got {
					return
				}
			}
		}
		t.Fatalf("ClientIP(%q, %q) = %v, neither the peer nor an X-Forwarded-For hop", remote, lines, got)
	})
}
