package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/inventory"
)

// maxInventoryBody bounds the /inventory answer the command reads.
const maxInventoryBody = 32 << 20

func inventoryCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("inventory", "List every operation of the config's OpenAPI specs, with the request counts\n"+
		"of the running gateway when its admin listener answers /inventory: how often\n"+
		"each operation was called and when last (never seen: 0), and the undocumented\n"+
		"paths seen. The config is checked like bulwark validate (exit 1 when invalid).\n"+
		"When the gateway cannot be reached, the operations are listed with counts\n"+
		"unknown, a note goes to stderr, and the exit code is 0.", stderr)
	path := configFlag(fs)
	adminURL := fs.String("admin-url", "", "base URL of the gateway's admin listener (default http:// + admin.listen of the config)")
	// Not defaulted from the environment in the flag itself: --help
	// prints defaults, and this one is a secret.
	token := fs.String("token", "", "admin bearer token (default $BULWARK_ADMIN_TOKEN; without --admin-url, admin.token of the config)")
	asJSON := fs.Bool("json", false, "print the inventory as JSON (the /inventory document) instead of a table")
	timeout := fs.Duration("timeout", 5*time.Second, "give up on the admin listener after this long")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, h, code := compileConfig("inventory", *path, stderr)
	if h == nil {
		return code
	}
	defer h.Close()
	snap := inventory.Snapshot{GeneratedAt: time.Now().UTC().Truncate(time.Second), Specs: h.Catalog().Operations()}

	base, bearer := *adminURL, *token
	if bearer == "" {
		bearer = os.Getenv("BULWARK_ADMIN_TOKEN")
	}
	if base == "" {
		base = "http://" + dialAddr(cfg.Admin.Listen)
		if bearer == "" {
			bearer = string(cfg.Admin.Token) // the config's own listener: its own token
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	live, err := fetchInventory(ctx, strings.TrimRight(base, "/")+"/inventory", bearer)
	if err != nil {
		fmt.Fprintf(stderr, "bulwark inventory: request counts unknown: the gateway's admin listener did not answer: %v\n", err)
	} else {
		merge(&snap, live)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(snap); err != nil {
			fmt.Fprintf(stderr, "bulwark inventory: %v\n", err)
			return 1
		}
		return 0
	}
	printInventory(stdout, snap, err == nil)
	return 0
}

// dialAddr turns a listen address into one to dial: a wildcard or empty
// host becomes 127.0.0.1.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// fetchInventory reads a gateway's /inventory.
func fetchInventory(ctx context.Context, url, token string) (*inventory.Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s answered %s", url, resp.Status)
	}
	var snap inventory.Snapshot
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxInventoryBody))
	if err := dec.Decode(&snap); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if snap.Specs == nil {
		return nil, errors.New("GET " + url + ": not an inventory document")
	}
	return &snap, nil
}

// merge copies the counts of live (the running gateway) into snap (the
// config file's operations). An operation the running config does not
// have keeps unknown counts; the undocumented paths are the gateway's.
func merge(snap *inventory.Snapshot, live *inventory.Snapshot) {
	type key struct{ spec, method, path string }
	counts := map[key]inventory.OperationView{}
	for _, s := range live.Specs {
		for _, o := range s.Operations {
			counts[key{s.Name, o.Method, o.Path}] = o
		}
	}
	for i := range snap.Specs {
		s := &snap.Specs[i]
		for j := range s.Operations {
			o := &s.Operations[j]
			if l, ok := counts[key{s.Name, o.Method, o.Path}]; ok {
				o.Requests, o.LastSeen = l.Requests, l.LastSeen
			}
		}
	}
	snap.GeneratedAt = live.GeneratedAt
	snap.Undocumented = live.Undocumented
}

// printInventory writes the human table: per spec, one line per
// operation, then the undocumented paths per upstream.
func printInventory(w io.Writer, snap inventory.Snapshot, live bool) {
	if len(snap.Specs) == 0 {
		fmt.Fprintln(w, "no specs in the config")
	}
	for i, s := range snap.Specs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		seen, known := 0, 0
		for _, o := range s.Operations {
			if o.Requests != nil {
				known++
				if *o.Requests > 0 {
					seen++
				}
			}
		}
		title := s.Name
		if s.Title != "" {
			title += ": " + s.Title
		}
		if s.Version != "" {
			title += " " + s.Version
		}
		summary := fmt.Sprintf("%d operations", len(s.Operations))
		if known > 0 {
			summary += fmt.Sprintf(", %d seen, %d never seen", seen, known-seen)
		} else {
			summary += ", request counts unknown"
		}
		fmt.Fprintf(w, "spec %s (%s)\n", title, summary)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "OPERATION\tMETHOD\tPATH\tDEPRECATED\tROUTES\tREQUESTS\tLAST SEEN")
		for _, o := range s.Operations {
			id := o.OperationID
			if id == "" {
				id = "-"
			}
			deprecated := "no"
			if o.Deprecated {
				deprecated = "yes"
			}
			routes := strings.Join(o.Routes, ",")
			if routes == "" {
				routes = "-"
			}
			requests, last := "?", "unknown"
			if o.Requests != nil {
				requests, last = strconv.FormatInt(*o.Requests, 10), "never"
				if o.LastSeen != nil {
					last = o.LastSeen.UTC().Format(time.RFC3339)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, o.Method, o.Path, deprecated, routes, requests, last)
		}
		_ = tw.Flush() // w is stdout; a failed write has nowhere to go
	}
	if !live {
		return
	}
	fmt.Fprintln(w)
	if len(snap.Undocumented) == 0 {
		fmt.Fprintln(w, "undocumented requests: none")
		return
	}
	for _, u := range snap.Undocumented {
		fmt.Fprintf(w, "undocumented requests to upstream %s: %d\n", u.Upstream, u.Requests)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATH\tREQUESTS\tLAST SEEN")
		for _, p := range u.Paths {
			last := "-"
			if p.LastSeen != nil {
				last = p.LastSeen.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\n", p.Template, p.Requests, last)
		}
		if u.OtherRequests > 0 {
			fmt.Fprintf(tw, "(other paths, beyond the %d kept)\t%d\t-\n", len(u.Paths), u.OtherRequests)
		}
		_ = tw.Flush() // as above
	}
}
