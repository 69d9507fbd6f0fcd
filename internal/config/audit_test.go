package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// auditWith returns a config whose audit section has keys, one per line
// from line 2, each at column 3 (so a value is at column len(key)+5), and a
// public route.
func auditWith(keys ...string) string {
	src := []string{"audit:"}
	for _, k := range keys {
		src = append(src, "  "+k)
	}
	return lines(append(src, routeTail("none")...)...)
}

// auditKeysWith is auditWith after an api_key authenticator keys reading
// header (line 2): the audit section starts on line 3, its keys on line 4.
func auditKeysWith(header string, keys ...string) string {
	src := []string{"authenticators:", "  keys: { type: api_key, header: " + header + " }", "audit:"}
	for _, k := range keys {
		src = append(src, "  "+k)
	}
	return lines(append(src, routeTail("[keys]")...)...)
}

func TestAuditErrors(t *testing.T) {
	p := newPKI(t)
	env := map[string]string{
		"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile, "OTHER_KEY": newPKI(t).keyFile,
		"NOT_PEM":  writeFile(t, t.TempDir(), "ca.txt", "not a certificate\n"),
		"NL_TOKEN": "not-a-real-token\n",
	}
	const (
		allowed   = "must be all, none or a ratio between 0 and 1 such as 0.1"
		oneOrMore = "must be 1 or more"
		positive  = "must be greater than 0"
		hostPort  = "must be host:port"
		credHdr   = "carries a credential: it never goes into the audit log"
		keyHdr    = "carries an API key: it never goes into the audit log"
		badHeader = "not a valid header name"
		file      = "file: { path: audit.jsonl }"
	)
	runAuthnCases(t, withAuthnEnv(env, []authnCase{
		// The section itself.
		{name: "not a mapping", src: lines(append([]string{"audit: stdout"}, routeTail("none")...)...), want: []string{
			"1:8: audit: expected a mapping, got a string"}},
		{name: "unknown key", src: auditWith("format: json"), want: []string{
			`2:3: audit.format: unknown key "format" (known keys here: sink, file, syslog, http, allowed, queue_size, on_full, block_timeout, headers, claims)`}},

		// sink and its section.
		{name: "sink unknown", src: auditWith("sink: kafka"), want: []string{
			"2:9: audit.sink: must be stdout, file, syslog or http"}},
		{name: "sink is case-sensitive", src: auditWith("sink: File", file), want: []string{
			"2:9: audit.sink: must be stdout, file, syslog or http",
			"3:9: audit.file: not used: sink is File",
		}},
		{name: "sink from an empty variable", src: auditWith("sink: ${AUDIT_SINK:-}"), want: []string{
			"2:9: audit.sink: must be stdout, file, syslog or http"}},
		{name: "sink as a list", src: auditWith("sink: [stdout]"), want: []string{
			"2:9: audit.sink: expected a string, got a list"}},
		{name: "sink file without file", src: auditWith("sink: file"), want: []string{
			"2:9: audit.sink: sink: file needs an audit.file section"}},
		{name: "sink syslog without syslog", src: auditWith("sink: syslog"), want: []string{
			"2:9: audit.sink: sink: syslog needs an audit.syslog section"}},
		{name: "sink http without http", src: auditWith("sink: http"), want: []string{
			"2:9: audit.sink: sink: http needs an audit.http section"}},
		{name: "file section with the default sink", src: auditWith(file), want: []string{
			"2:9: audit.file: not used: sink is stdout"}},
		{name: "syslog and http sections with sink file", src: auditWith("sink: file", file,
			"syslog: { address: \"127.0.0.1:6514\" }", "http: { url: \"https://siem.example.com/ingest\" }"), want: []string{
			"4:11: audit.syslog: not used: sink is file",
			"5:9: audit.http: not used: sink is file",
		}},

		// allowed: all, none or a ratio.
		{name: "allowed unknown", src: auditWith("allowed: some"), want: []string{"2:12: audit.allowed: " + allowed}},
		{name: "allowed is case-sensitive", src: auditWith("allowed: All"), want: []string{"2:12: audit.allowed: " + allowed}},
		{name: "allowed above 1", src: auditWith("allowed: 1.5"), want: []string{"2:12: audit.allowed: " + allowed}},
		{name: "allowed negative", src: auditWith("allowed: -0.1"), want: []string{"2:12: audit.allowed: " + allowed}},
		{name: "allowed NaN", src: auditWith("allowed: NaN"), want: []string{"2:12: audit.allowed: " + allowed}},
		{name: "allowed infinite", src: auditWith("allowed: +Inf"), want: []string{"2:12: audit.allowed: " + allowed}},
		{name: "allowed a percentage", src: auditWith("allowed: 10%"), want: []string{"2:12: audit.allowed: " + allowed}},
		{name: "allowed from an empty variable", src: auditWith("allowed: ${AUDIT_ALLOWED:-}"), want: []string{
			"2:12: audit.allowed: " + allowed}},
		{name: "allowed a boolean", src: auditWith("allowed: true"), want: []string{"2:12: audit.allowed: " + allowed}},

		// The queue.
		{name: "queue_size 0", src: auditWith("queue_size: 0"), want: []string{"2:15: audit.queue_size: " + oneOrMore}},
		{name: "queue_size negative", src: auditWith("queue_size: -5"), want: []string{"2:15: audit.queue_size: " + oneOrMore}},
		{name: "queue_size not an integer", src: auditWith("queue_size: 10k"), want: []string{
			"2:15: audit.queue_size: expected an integer"}},
		{name: "on_full unknown", src: auditWith("on_full: wait"), want: []string{"2:12: audit.on_full: must be block or drop"}},
		{name: "on_full empty", src: auditWith("on_full: \"\""), want: []string{"2:12: audit.on_full: must be block or drop"}},
		{name: "block_timeout 0", src: auditWith("on_full: block", "block_timeout: 0s"), want: []string{
			"3:18: audit.block_timeout: " + positive}},
		{name: "block_timeout without unit", src: auditWith("block_timeout: 100"), want: []string{
			"2:18: audit.block_timeout: a duration needs a unit: use a unit, e.g. 30s"}},
		{name: "block_timeout negative", src: auditWith("block_timeout: -1s"), want: []string{
			"2:18: audit.block_timeout: a duration must not be negative"}},

		// headers: never a credential.
		{
			name: "credential headers",
			src: auditWith("headers:", "  - Authorization", "  - proxy-authorization", "  - Cookie",
				"  - Set-Cookie", "  - DPoP", "  - User-Agent"),
			want: []string{
				"3:7: audit.headers[0]: Authorization " + credHdr,
				"4:7: audit.headers[1]: proxy-authorization " + credHdr,
				"5:7: audit.headers[2]: Cookie " + credHdr,
				"6:7: audit.headers[3]: Set-Cookie " + credHdr,
				"7:7: audit.headers[4]: DPoP " + credHdr,
			},
		},
		{name: "the default api_key header", src: auditKeysWith("X-API-Key", "headers: [User-Agent, x-api-key]"), want: []string{
			"4:25: audit.headers[1]: x-api-key " + keyHdr}},
		{name: "a custom api_key header", src: auditKeysWith("X-Partner-Key", "headers: [X-PARTNER-KEY]"), want: []string{
			"4:13: audit.headers[0]: X-PARTNER-KEY " + keyHdr}},
		{name: "header name with a space", src: auditWith("headers: [\"X Tenant\"]"), want: []string{
			"2:13: audit.headers[0]: " + badHeader}},
		{name: "header name with a colon", src: auditWith("headers: [\"X-Tenant:\"]"), want: []string{
			"2:13: audit.headers[0]: " + badHeader}},
		{name: "header name empty", src: auditWith("headers: [\"\"]"), want: []string{
			"2:13: audit.headers[0]: " + badHeader}},
		{name: "headers a string", src: auditWith("headers: User-Agent"), want: []string{
			"2:12: audit.headers: expected a list, got a string"}},
		{name: "claims a mapping", src: auditWith("claims: { tenant: true }"), want: []string{
			"2:11: audit.claims: expected a list, got a mapping"}},

		// file.
		{name: "file path missing", src: auditWith("sink: file", "file: { max_backups: 3 }"), want: []string{
			"3:9: audit.file.path: is required: the audit file"}},
		{name: "file empty", src: auditWith("sink: file", "file: {}"), want: []string{
			"3:9: audit.file.path: is required: the audit file"}},
		{name: "file path from an empty variable", src: auditWith("sink: file", "file: { path: \"${AUDIT_FILE:-}\" }"), want: []string{
			"3:17: audit.file.path: is required: the audit file"}},
		{name: "file directory missing", src: auditWith("sink: file", "file: { path: no-such-dir/audit.jsonl }"), want: []string{
			"3:17: audit.file.path: its directory does not exist"}},
		{name: "file directory is a file", src: auditWith("sink: file", "file: { path: \"${CA}/audit.jsonl\" }"), want: []string{
			"3:17: audit.file.path: its directory does not exist"}},
		{name: "file max_size below 1KiB", src: auditWith("sink: file", "file: { path: audit.jsonl, max_size: 1023 }"), want: []string{
			"3:40: audit.file.max_size: must be at least 1KiB"}},
		{name: "file max_size 0", src: auditWith("sink: file", "file: { path: audit.jsonl, max_size: 0 }"), want: []string{
			"3:40: audit.file.max_size: must be at least 1KiB"}},
		{name: "file max_size unit", src: auditWith("sink: file", "file: { path: audit.jsonl, max_size: 1mb }"), want: []string{
			"3:40: audit.file.max_size: not a size: write bytes as an integer, or an integer with KiB, MiB, GiB, KB, MB or GB, e.g. 1MiB"}},
		{name: "file max_backups negative", src: auditWith("sink: file", "file: { path: audit.jsonl, max_backups: -1 }"), want: []string{
			"3:43: audit.file.max_backups: must not be negative"}},
		{name: "file max_age negative", src: auditWith("sink: file", "file: { path: audit.jsonl, max_age: -24h }"), want: []string{
			"3:39: audit.file.max_age: a duration must not be negative"}},
		{name: "file unknown key", src: auditWith("sink: file", "file: { path: audit.jsonl, compress: true }"), want: []string{
			`3:30: audit.file.compress: unknown key "compress" (known keys here: path, max_size, max_backups, max_age)`}},

		// syslog.
		{name: "syslog address missing", src: auditWith("sink: syslog", "syslog: { app_name: gw }"), want: []string{
			"3:11: audit.syslog.address: " + hostPort}},
		{name: "syslog address without port", src: auditWith("sink: syslog", "syslog: { address: syslog.internal }"), want: []string{
			"3:22: audit.syslog.address: " + hostPort}},
		{name: "syslog address empty port", src: auditWith("sink: syslog", "syslog: { address: \"syslog.internal:\" }"), want: []string{
			"3:22: audit.syslog.address: " + hostPort}},
		{name: "syslog address named port", src: auditWith("sink: syslog", "syslog: { address: \"syslog.internal:syslog\" }"), want: []string{
			"3:22: audit.syslog.address: " + hostPort}},
		{name: "syslog address port 0", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:0\" }"), want: []string{
			"3:22: audit.syslog.address: " + hostPort}},
		{name: "syslog address port out of range", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:65536\" }"), want: []string{
			"3:22: audit.syslog.address: " + hostPort}},
		{name: "syslog address a URL", src: auditWith("sink: syslog", "syslog: { address: \"tcp://10.0.0.5:6514\" }"), want: []string{
			"3:22: audit.syslog.address: " + hostPort}},
		{name: "syslog app_name with a space", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", app_name: \"my gw\" }"), want: []string{
			"3:49: audit.syslog.app_name: must be 1 to 48 printable ASCII characters, no spaces (RFC 5424 APP-NAME)"}},
		{name: "syslog app_name too long", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", app_name: "+strings.Repeat("a", 49)+" }"), want: []string{
			"3:49: audit.syslog.app_name: must be 1 to 48 printable ASCII characters, no spaces (RFC 5424 APP-NAME)"}},
		{name: "syslog facility above 23", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", facility: 24 }"), want: []string{
			"3:49: audit.syslog.facility: must be 0 to 23"}},
		{name: "syslog facility negative", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", facility: -1 }"), want: []string{
			"3:49: audit.syslog.facility: must be 0 to 23"}},
		{name: "syslog tls ca_file missing", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", tls: { ca_file: nope.pem } }"), want: []string{
			"3:55: audit.syslog.tls.ca_file: cannot read the CA file: no such file or directory"}},
		{name: "syslog tls ca_file not PEM", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", tls: { ca_file: \"${NOT_PEM}\" } }"), want: []string{
			"3:55: audit.syslog.tls.ca_file: the CA file holds no PEM certificate"}},
		{name: "syslog tls key_file without cert_file", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", tls: { key_file: \"${KEY}\" } }"), want: []string{
			"3:44: audit.syslog.tls.cert_file: is required with key_file"}},
		{name: "syslog tls cert_file without key_file", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", tls: { cert_file: \"${CERT}\" } }"), want: []string{
			"3:44: audit.syslog.tls.key_file: is required with cert_file"}},
		{name: "syslog tls key_file unreadable", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", tls: { cert_file: \"${CERT}\", key_file: nope.key } }"), want: []string{
			"3:78: audit.syslog.tls.key_file: cannot read the key: no such file or directory"}},
		{name: "syslog tls unknown key", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", tls: { insecure: true } }"), want: []string{
			`3:46: audit.syslog.tls.insecure: unknown key "insecure" (known keys here: ca_file, cert_file, key_file, server_name)`}},
		{name: "syslog unknown key", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", protocol: udp }"), want: []string{
			`3:39: audit.syslog.protocol: unknown key "protocol" (known keys here: address, tls, app_name, facility)`}},

		// http.
		{name: "http url missing", src: auditWith("sink: http", "http: { batch_size: 10 }"), want: []string{
			"3:9: audit.http.url: is required: the collector URL, e.g. https://siem.example.com/ingest"}},
		{name: "http url from an empty variable", src: auditWith("sink: http", "http: { url: \"${AUDIT_URL:-}\" }"), want: []string{
			"3:16: audit.http.url: is required: the collector URL, e.g. https://siem.example.com/ingest"}},
		{name: "http url scheme", src: auditWith("sink: http", "http: { url: \"ftp://siem.example.com/ingest\" }"), want: []string{
			"3:16: audit.http.url: scheme must be http or https"}},
		{name: "http url without host", src: auditWith("sink: http", "http: { url: \"https:///ingest\" }"), want: []string{
			"3:16: audit.http.url: must have a host, e.g. http://127.0.0.1:9000"}},
		{name: "http url query", src: auditWith("sink: http", "http: { url: \"https://siem.example.com/ingest?token=x\" }"), want: []string{
			"3:16: audit.http.url: must not have a query"}},
		{name: "http url fragment", src: auditWith("sink: http", "http: { url: \"https://siem.example.com/ingest#x\" }"), want: []string{
			"3:16: audit.http.url: must not have a fragment"}},
		{name: "http url port", src: auditWith("sink: http", "http: { url: \"https://siem.example.com:99999/ingest\" }"), want: []string{
			"3:16: audit.http.url: invalid port"}},
		{
			name: "http batch, flush and timeout",
			src:  auditWith("sink: http", "http:", "  url: https://siem.example.com/ingest", "  batch_size: 0", "  flush_interval: 0s", "  timeout: 0s"),
			want: []string{
				"5:17: audit.http.batch_size: " + oneOrMore,
				"6:21: audit.http.flush_interval: " + positive,
				"7:14: audit.http.timeout: " + positive,
			},
		},
		{name: "http ca_file missing", src: auditWith("sink: http", "http: { url: \"https://siem.example.com/ingest\", ca_file: nope.pem }"), want: []string{
			"3:60: audit.http.ca_file: cannot read the CA file: no such file or directory"}},
		{name: "http ca_file not a CA", src: auditWith("sink: http", "http: { url: \"https://siem.example.com/ingest\", ca_file: \"${KEY}\" }"), want: []string{
			"3:60: audit.http.ca_file: the CA file holds no PEM certificate"}},
		{name: "http ca_file with an http url", src: auditWith("sink: http", "http: { url: \"http://127.0.0.1:9200/ingest\", ca_file: \"${CA}\" }"), want: []string{
			"3:57: audit.http.ca_file: needs an https url: a CA verifies the collector's TLS certificate"}},
		{name: "http token with a newline", src: auditWith("sink: http", "http: { url: \"https://siem.example.com/ingest\", token: \"${NL_TOKEN}\" }"), want: []string{
			"3:58: audit.http.token: must not contain control characters (a newline from a secret file?)"}},
		{name: "http unknown key", src: auditWith("sink: http", "http: { url: \"https://siem.example.com/ingest\", gzip: true }"), want: []string{
			`3:51: audit.http.gzip: unknown key "gzip" (known keys here: url, token, batch_size, flush_interval, timeout, ca_file)`}},

		// Every problem is reported, in file order.
		{name: "several", src: auditWith("sink: file", "allowed: 2", "queue_size: 0", "on_full: wait", "headers: [Cookie]",
			"file: { path: audit.jsonl, max_size: 10 }"), want: []string{
			"3:12: audit.allowed: " + allowed,
			"4:15: audit.queue_size: " + oneOrMore,
			"5:12: audit.on_full: must be block or drop",
			"6:13: audit.headers[0]: Cookie " + credHdr,
			"7:40: audit.file.max_size: must be at least 1KiB",
		}},
	}))
}

// TestAuditSyslogKeyPair checks that the syslog client certificate and key
// must load as a pair (the message is crypto/tls's, so only its start is
// fixed).
func TestAuditSyslogKeyPair(t *testing.T) {
	p := newPKI(t)
	env := map[string]string{"CERT": p.certFile, "OTHER_KEY": newPKI(t).keyFile}
	errs := parseErrors(t, auditWith("sink: syslog",
		"syslog: { address: \"10.0.0.5:6514\", tls: { cert_file: \"${CERT}\", key_file: \"${OTHER_KEY}\" } }"), env)
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1:\n%v", len(errs), errs)
	}
	if got, want := where(errs[0]), "3:57: audit.syslog.tls.cert_file"; got != want {
		t.Errorf("error at %q, want %q (%v)", got, want, errs[0])
	}
	if !strings.HasPrefix(errs[0].Msg, "cannot load the certificate and key: ") {
		t.Errorf("message = %q, want it to say the pair does not load", errs[0].Msg)
	}
}

// TestAuditSecretsNotEchoed checks that an error about the HTTP sink never
// repeats its URL (which may hold credentials) or its token.
func TestAuditSecretsNotEchoed(t *testing.T) {
	const password, token = "hunter2-not-a-real-password", "tok-not-a-real-token"
	env := map[string]string{"TOKEN": token}
	errs := parseErrors(t, auditWith("sink: http",
		"http: { url: \"https://gw:"+password+"@siem.example.com/ingest\", token: \"${TOKEN}\", batch_size: 0 }"), env)
	got := errs.Error()
	want := "t.yaml:3:16: audit.http.url: must not hold user info (credentials in a URL end up in logs); " +
		"authenticate to the upstream with upstream tls client certificates\n" +
		"t.yaml:3:113: audit.http.batch_size: must be 1 or more"
	if got != want {
		t.Errorf("errors =\n%s\nwant\n%s", got, want)
	}
	for _, secret := range []string{password, token} {
		if strings.Contains(got, secret) {
			t.Errorf("the errors repeat a secret: %s", got)
		}
	}
}

// TestAuditHeadersAccepted checks the headers that may go into events:
// anything but a credential, including the api_key header name when no
// authenticator reads it.
func TestAuditHeadersAccepted(t *testing.T) {
	for _, src := range []string{
		auditWith("headers: [User-Agent, X-Tenant, Referer, X-Forwarded-For]"),
		auditWith("headers: [X-API-Key]"), // no api_key authenticator: just a header
		auditKeysWith("X-Partner-Key", "headers: [X-API-Key, Authorization-Hint]"),
	} {
		cfg := mustParse(t, src, nil)
		if len(cfg.Audit.Headers) == 0 {
			t.Errorf("audit.headers is empty for\n%s", src)
		}
	}
}

func TestAuditDefaults(t *testing.T) {
	sectionDefaults := Audit{Sink: "stdout", Allowed: "all", QueueSize: 10000, OnFull: "drop",
		BlockFor: Duration(100 * time.Millisecond)}
	t.Run("no section: no audit log", func(t *testing.T) {
		if got := mustParse(t, minimal, nil).Audit; got != nil {
			t.Errorf("audit = %+v, want nil (no events without an audit section)", got)
		}
	})
	t.Run("empty section", func(t *testing.T) {
		for _, src := range []string{auditWith(), lines("audit: {}", minimal)} {
			got := mustParse(t, src, nil).Audit
			if got == nil || !reflect.DeepEqual(*got, sectionDefaults) {
				t.Errorf("audit = %+v, want %+v", got, sectionDefaults)
			}
		}
	})
	t.Run("file", func(t *testing.T) {
		a := mustParse(t, auditWith("sink: file", "file: { path: audit.jsonl }"), nil).Audit
		want := AuditFile{Path: "audit.jsonl", MaxSize: 100 << 20, MaxBackups: 10}
		if !reflect.DeepEqual(*a.File, want) {
			t.Errorf("audit.file = %+v, want %+v", *a.File, want)
		}
		if a.Syslog != nil || a.HTTP != nil {
			t.Errorf("syslog = %v, http = %v, want neither", a.Syslog, a.HTTP)
		}
	})
	t.Run("syslog", func(t *testing.T) {
		a := mustParse(t, auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\" }"), nil).Audit
		want := AuditSyslog{Address: "10.0.0.5:6514", AppName: "bulwark", Facility: 13}
		if !reflect.DeepEqual(*a.Syslog, want) {
			t.Errorf("audit.syslog = %+v, want %+v", *a.Syslog, want)
		}
	})
	t.Run("http", func(t *testing.T) {
		a := mustParse(t, auditWith("sink: http", "http: { url: \"https://siem.example.com/ingest\" }"), nil).Audit
		want := AuditHTTP{URL: "https://siem.example.com/ingest", BatchSize: 500,
			FlushInterval: Duration(time.Second), Timeout: Duration(5 * time.Second)}
		if !reflect.DeepEqual(*a.HTTP, want) {
			t.Errorf("audit.http = %+v, want %+v", *a.HTTP, want)
		}
	})
}

// TestAuditExplicitZeros checks that a 0 written in the file is kept, not
// replaced by the default.
func TestAuditExplicitZeros(t *testing.T) {
	a := mustParse(t, auditWith("sink: syslog", "allowed: 0",
		"syslog: { address: \"10.0.0.5:6514\", facility: 0, app_name: \"\" }"), nil).Audit
	if got, want := []any{string(a.Allowed), a.Syslog.Facility, a.Syslog.AppName}, []any{"0", 0, ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("allowed, facility, app_name = %v, want %v", got, want)
	}
	f := mustParse(t, auditWith("sink: file", "file: { path: audit.jsonl, max_backups: 0, max_age: 0s }"), nil).Audit.File
	if f.MaxBackups != 0 || f.MaxAge != 0 {
		t.Errorf("max_backups, max_age = %d, %v, want 0, 0", f.MaxBackups, f.MaxAge)
	}
}

// TestAuditAllowedAccepted checks the values of audit.allowed that load,
// as written: a YAML number is taken as the text the file holds.
func TestAuditAllowedAccepted(t *testing.T) {
	for _, v := range []string{"all", "none", "0", "1", "0.1", "\"0.25\"", "1.0", "0.001", "1e-2", "\"${RATIO}\""} {
		t.Run(v, func(t *testing.T) {
			a := mustParse(t, auditWith("allowed: "+v), map[string]string{"RATIO": "0.5"}).Audit
			want := strings.Trim(v, `"`)
			if want == "${RATIO}" {
				want = "0.5"
			}
			if string(a.Allowed) != want {
				t.Errorf("allowed = %q, want %q", a.Allowed, want)
			}
		})
	}
}

// TestAuditLoad loads a file that sets every audit key, with relative
// paths resolved against the config file's directory and the token taken
// from the environment.
func TestAuditLoad(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	ca := writeFile(t, dir, "collector-ca.pem", mustRead(t, p.caFile))
	src := lines(
		"authenticators:",
		"  keys: { type: api_key, header: X-API-Key }",
		"audit:",
		"  sink: http",
		"  allowed: 0.1",
		"  queue_size: 50000",
		"  on_full: block",
		"  block_timeout: 20ms",
		"  headers: [User-Agent, X-Tenant]",
		"  claims: [tenant, azp]",
		"  http:",
		"    url: https://siem.example.com/ingest",
		"    token: ${SIEM_TOKEN}",
		"    batch_size: 100",
		"    flush_interval: 250ms",
		"    timeout: 2s",
		"    ca_file: collector-ca.pem",
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { name: r, method: GET, path: /, upstream: app, auth: [keys] }",
	)
	cfg, err := Load(writeFile(t, dir, "bulwark.yaml", src), envOf(map[string]string{"SIEM_TOKEN": "not-a-real-token"}))
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	want := Audit{
		Sink: "http", Allowed: "0.1", QueueSize: 50000, OnFull: "block", BlockFor: Duration(20 * time.Millisecond),
		Headers: []string{"User-Agent", "X-Tenant"}, Claims: []string{"tenant", "azp"},
		HTTP: &AuditHTTP{URL: "https://siem.example.com/ingest", Token: "not-a-real-token", BatchSize: 100,
			FlushInterval: Duration(250 * time.Millisecond), Timeout: Duration(2 * time.Second), CAFile: Path(ca)},
	}
	if !reflect.DeepEqual(*cfg.Audit, want) {
		t.Errorf("audit =\n%+v\nwant\n%+v", *cfg.Audit, want)
	}

	file := lines(
		"audit:",
		"  sink: file",
		"  allowed: none",
		"  file: { path: logs/audit.jsonl, max_size: 10MiB, max_backups: 3, max_age: 168h }",
		minimal,
	)
	cfg, err = Load(writeFile(t, dir, "file.yaml", file), envOf(nil))
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	wantFile := AuditFile{Path: Path(filepath.Join(dir, "logs", "audit.jsonl")), MaxSize: 10 << 20, MaxBackups: 3,
		MaxAge: Duration(168 * time.Hour)}
	if !reflect.DeepEqual(*cfg.Audit.File, wantFile) {
		t.Errorf("audit.file = %+v, want %+v", *cfg.Audit.File, wantFile)
	}

	syslog := lines(
		"audit:",
		"  sink: syslog",
		"  syslog:",
		"    address: \"syslog.internal:6514\"",
		"    app_name: gateway-eu",
		"    facility: 10",
		"    tls: { ca_file: \"${CA}\", cert_file: \"${CERT}\", key_file: \"${KEY}\", server_name: syslog.internal }",
		minimal,
	)
	cfg, err = Load(writeFile(t, dir, "syslog.yaml", syslog), envOf(map[string]string{"CA": p.caFile, "CERT": p.certFile, "KEY": p.keyFile}))
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	wantSyslog := AuditSyslog{Address: "syslog.internal:6514", AppName: "gateway-eu", Facility: 10,
		TLS: &ClientTLS{CAFile: Path(p.caFile), CertFile: Path(p.certFile), KeyFile: Path(p.keyFile), ServerName: "syslog.internal"}}
	if !reflect.DeepEqual(*cfg.Audit.Syslog, wantSyslog) {
		t.Errorf("audit.syslog = %+v, want %+v", *cfg.Audit.Syslog, wantSyslog)
	}
}

// TestAuditSchema checks what the editor schema accepts for the audit
// keys.
func TestAuditSchema(t *testing.T) {
	sch := compileSchema(t)
	tests := []struct {
		name string
		src  string
		ok   bool
	}{
		{name: "file", src: auditWith("sink: file", "file: { path: /var/log/bulwark/audit.jsonl }", "allowed: all"), ok: true},
		{name: "allowed none", src: auditWith("allowed: none"), ok: true},
		{name: "allowed a quoted ratio", src: auditWith("allowed: \"0.1\""), ok: true},
		{name: "allowed a ratio", src: auditWith("allowed: 0.1"), ok: true},
		{name: "allowed 1", src: auditWith("allowed: 1"), ok: true},
		{name: "syslog", src: auditWith("sink: syslog", "syslog: { address: \"10.0.0.5:6514\", facility: 0, tls: { ca_file: ca.pem } }"), ok: true},
		{name: "http", src: auditWith("sink: http", "http: { url: \"https://siem.example.com/ingest\", token: \"${T}\", batch_size: 10 }"), ok: true},
		{name: "queue", src: auditWith("queue_size: 100", "on_full: block", "block_timeout: 50ms", "headers: [User-Agent]", "claims: [tenant]"), ok: true},
		{name: "sink unknown", src: auditWith("sink: kafka")},
		{name: "on_full unknown", src: auditWith("on_full: wait")},
		{name: "queue_size 0", src: auditWith("queue_size: 0")},
		{name: "block_timeout without unit", src: auditWith("block_timeout: 100")},
		{name: "unknown key", src: auditWith("format: json")},
		{name: "file without path", src: auditWith("sink: file", "file: { max_backups: 1 }")},
		{name: "max_backups negative", src: auditWith("sink: file", "file: { path: a.jsonl, max_backups: -1 }")},
		{name: "syslog without address", src: auditWith("sink: syslog", "syslog: { facility: 1 }")},
		{name: "http url scheme", src: auditWith("sink: http", "http: { url: \"ftp://siem.example.com/\" }")},
		{name: "http without url", src: auditWith("sink: http", "http: { batch_size: 1 }")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sch.Validate(yamlToJSON(t, []byte(tt.src)))
			if got := err == nil; got != tt.ok {
				t.Errorf("valid = %v, want %v (%v)", got, tt.ok, err)
			}
		})
	}
}
