package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// fileWatch reports changes of the config file. It watches the file's
// directory, not the file: editors replace files by rename, and Kubernetes
// updates a mounted ConfigMap by swapping a symlink, both of which a watch
// on the file itself would lose.
type fileWatch struct {
	w        *fsnotify.Watcher
	dir      string
	debounce time.Duration
	log      *zap.Logger
}

func newFileWatch(path string, debounce time.Duration, log *zap.Logger) (*fileWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config: %w", err)
	}
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		_ = w.Close() // the Add error is the one to report
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	if debounce <= 0 {
		debounce = 500 * time.Millisecond
	}
	return &fileWatch{w: w, dir: dir, debounce: debounce, log: log}, nil
}

// run sends on changed once per burst of events (after debounce of quiet)
// until ctx ends. Any change in the directory counts: a reload of an
// unchanged file is cheap and harmless.
func (f *fileWatch) run(ctx context.Context, changed chan<- struct{}) {
	defer f.w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-f.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(f.debounce)
		case err, ok := <-f.w.Errors:
			if !ok {
				return
			}
			f.log.Warn("config watch error", zap.Error(err))
		case <-timer.C:
			select {
			case changed <- struct{}{}:
			default: // a reload is already pending
			}
		}
	}
}
