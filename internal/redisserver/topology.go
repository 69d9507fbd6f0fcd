package redisserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ClusterSlots is the number of hash slots of a Redis Cluster.
const ClusterSlots = 16384

// Sentinel timings: short, so that a test sees a failover within seconds.
const (
	sentinelDownAfter       = 1000 // ms without an answer before a master is down
	sentinelFailoverTimeout = 3000 // ms
)

// StartSentinel starts a Sentinel (redis-server --sentinel) that monitors
// the master at masterAddr under name, with a quorum of 1, so that it
// alone decides a failover: SENTINEL FAILOVER name, or the master not
// answering for a second. Its config file, which a Sentinel rewrites as
// it learns, is written in opts.Dir (or the temporary directory). Start
// any replica first and wait for it (WaitReplicas): the Sentinel then
// learns of it at once.
func StartSentinel(ctx context.Context, name, masterAddr string, opts Options) (*Server, error) {
	host, port, err := net.SplitHostPort(masterAddr)
	if err != nil {
		return nil, fmt.Errorf("sentinel: master address: %w", err)
	}
	dir, made := opts.Dir, false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "redisserver-sentinel-"); err != nil {
			return nil, fmt.Errorf("sentinel directory: %w", err)
		}
		made = true
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sentinel directory: %w", err)
	}
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 1\n"+
		"sentinel down-after-milliseconds %[1]s %[4]d\n"+
		"sentinel failover-timeout %[1]s %[5]d\n",
		name, host, port, sentinelDownAfter, sentinelFailoverTimeout)
	if opts.Password != "" {
		text += fmt.Sprintf("sentinel auth-pass %s %s\n", name, opts.Password)
		opts.Password = "" // the master's; the Sentinel itself has none
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		if made {
			_ = os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("sentinel config: %w", err)
	}
	opts.Dir, opts.ConfigFile = dir, conf
	opts.Args = append(slices.Clone(opts.Args), "--sentinel")
	s, err := Start(ctx, opts)
	if err != nil {
		if made {
			_ = os.RemoveAll(dir)
		}
		return nil, err
	}
	if made {
		s.tmpDir = dir // Stop removes it, as it does Start's
	}
	return s, nil
}

// WaitReplicas waits until the master s has n replicas online.
func (s *Server) WaitReplicas(ctx context.Context, n int) error {
	return poll(ctx, func() error {
		reply, err := s.Do(ctx, "INFO", "replication")
		if err != nil {
			return err
		}
		info := strings.Join(reply, "")
		online := 0
		for line := range strings.SplitSeq(info, "\r\n") {
			if strings.HasPrefix(line, "slave") && strings.Contains(line, "state=online") {
				online++
			}
		}
		if online < n {
			return fmt.Errorf("%d of %d replicas online", online, n)
		}
		return nil
	})
}

// StartCluster starts n redis-servers in cluster mode, joins them (CLUSTER
// MEET), gives each a contiguous share of the slots (CLUSTER
// ADDSLOTSRANGE), and waits until every node says cluster_state:ok. Each
// node gets its own directory for its nodes.conf (under opts.Dir when it
// is set) and a free port for its cluster bus. On an error, the nodes
// started are stopped.
func StartCluster(ctx context.Context, n int, opts Options) (nodes []*Server, err error) {
	if n < 1 {
		return nil, errors.New("cluster: needs at least one node")
	}
	defer func() {
		if err != nil {
			for _, s := range nodes {
				_ = s.Stop()
			}
			nodes = nil
		}
	}()
	buses := make([]int, n)
	for i := range n {
		o := opts
		if opts.Dir != "" {
			o.Dir = filepath.Join(opts.Dir, "node-"+strconv.Itoa(i))
		}
		if buses[i], err = freePort(); err != nil {
			return nodes, err
		}
		o.Args = append(slices.Clone(opts.Args), "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-port", strconv.Itoa(buses[i]),
			"--cluster-node-timeout", "5000")
		s, err := Start(ctx, o)
		if err != nil {
			return nodes, fmt.Errorf("cluster node %d: %w", i, err)
		}
		nodes = append(nodes, s)
	}
	for i, s := range nodes[1:] {
		host, port, _ := net.SplitHostPort(s.Addr())
		if _, err := nodes[0].Do(ctx, "CLUSTER", "MEET", host, port, strconv.Itoa(buses[i+1])); err != nil {
			return nodes, fmt.Errorf("cluster meet %s: %w", s.Addr(), err)
		}
	}
	for i, s := range nodes {
		first, last := i*ClusterSlots/n, (i+1)*ClusterSlots/n-1
		if _, err := s.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(first), strconv.Itoa(last)); err != nil {
			return nodes, fmt.Errorf("cluster addslotsrange on %s: %w", s.Addr(), err)
		}
	}
	for _, s := range nodes {
		err := poll(ctx, func() error {
			reply, err := s.Do(ctx, "CLUSTER", "INFO")
			if err != nil {
				return err
			}
			info := strings.Join(reply, "")
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)+"\r\n") {
				return fmt.Errorf("not ready:\n%s", info)
			}
			return nil
		})
		if err != nil {
			return nodes, fmt.Errorf("cluster node %s: %w", s.Addr(), err)
		}
	}
	return nodes, nil
}

// poll calls try until it returns nil, ctx ends or startTimeout passes;
// it then returns try's last error.
func poll(ctx context.Context, try func() error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := try()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-tick.C:
		}
	}
}

// SentinelFailover asks the Sentinel s for a failover of master name
// (SENTINEL FAILOVER), again while it answers that it knows no good
// replica yet (a Sentinel takes a moment to hear from a new replica),
// and waits until it names another master. It returns the new master's
// address.
func (s *Server) SentinelFailover(ctx context.Context, name string) (string, error) {
	old, err := s.SentinelMaster(ctx, name)
	if err != nil {
		return "", err
	}
	err = poll(ctx, func() error {
		_, err := s.Do(ctx, "SENTINEL", "FAILOVER", name)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sentinel failover: %w", err)
	}
	var addr string
	err = poll(ctx, func() error {
		if addr, err = s.SentinelMaster(ctx, name); err == nil && addr == old {
			err = fmt.Errorf("the master is still %s", old)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sentinel failover: %w", err)
	}
	return addr, nil
}

// SentinelMaster returns the address of master name as the Sentinel s
// knows it (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (s *Server) SentinelMaster(ctx context.Context, name string) (string, error) {
	reply, err := s.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
	if err != nil {
		return "", err
	}
	if len(reply) != 2 {
		return "", fmt.Errorf("sentinel: no master %q (%q)", name, reply)
	}
	return net.JoinHostPort(reply[0], reply[1]), nil
}

// WaitReplicated waits until every replica of the master s has
// acknowledged all that s has written so far (replicas acknowledge about
// once a second). WAIT cannot do this for another client's writes: it
// waits for the writes of the connection that sends it.
func (s *Server) WaitReplicated(ctx context.Context) error {
	return poll(ctx, func() error {
		reply, err := s.Do(ctx, "INFO", "replication")
		if err != nil {
			return err
		}
		var offset string
		var acked []string
		for line := range strings.SplitSeq(strings.Join(reply, ""), "\r\n") {
			if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
				offset = v
			}
			if strings.HasPrefix(line, "slave") {
				for field := range strings.SplitSeq(line, ",") {
					if v, ok := strings.CutPrefix(field, "offset="); ok {
						acked = append(acked, v)
					}
				}
			}
		}
		if offset == "" || len(acked) == 0 {
			return fmt.Errorf("no replication offsets in %q", reply)
		}
		for _, a := range acked {
			if a != offset {
				return fmt.Errorf("a replica acknowledged offset %s of %s", a, offset)
			}
		}
		return nil
	})
}
