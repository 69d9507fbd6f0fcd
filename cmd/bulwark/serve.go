package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/gateway"
)

func serve(args []string, stderr io.Writer) int {
	fs := newFlags("serve", "Run the gateway with the given config.\n"+
		"Signals: SIGHUP reloads the config and TLS files; SIGTERM or SIGINT drains and exits 0.", stderr)
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "bulwark serve: no config: pass --config FILE or set BULWARK_CONFIG")
		return 2
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	level := zap.NewAtomicLevelAt(logLevel(cfg.Log.Level))
	log := newLogger(cfg.Log.Format, level, stderr)
	defer func() { _ = log.Sync() }() // stderr cannot always sync; nothing to do about it
	for _, w := range cfg.Warnings() {
		log.Warn("config warning", zap.String("warning", w.Error()))
	}
	tuneGC(log)
	// go-redis logs through one process-wide logger (dial failures and
	// the like); route it into the process log instead of bare stderr.
	redis.SetLogger(redisLog{log.Named("redis")})
	bi := buildInfo()
	log.Info("starting bulwark", zap.String("version", bi.Version), zap.String("commit", bi.Revision),
		zap.String("config", *path))
	srv, err := gateway.New(cfg, gateway.Options{
		ConfigPath: *path,
		LookupEnv:  os.LookupEnv,
		Log:        log,
		Level:      level,
		Build:      bi,
	})
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // one reload already pending covers this signal too
				}
			}
		}
	}()
	if err := srv.Run(ctx, reload); err != nil {
		log.Error("stopped", zap.Error(err))
		return 1
	}
	return 0
}

// printConfigError prints every config error on its own line as
// file:line:col: yaml.path: message.
func printConfigError(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}

func logLevel(s string) zapcore.Level {
	lvl, err := zapcore.ParseLevel(s)
	if err != nil {
		return zapcore.InfoLevel // the loader accepts only valid levels
	}
	return lvl
}

// newLogger builds the process logger: JSON lines on stderr, or a console
// format for humans (the demo).
func newLogger(format string, level zap.AtomicLevel, w io.Writer) *zap.Logger {
	enc := zapcore.EncoderConfig{
		TimeKey:        "time",
		LevelKey:       "level",
		NameKey:        "logger",
		MessageKey:     "msg",
		StacktraceKey:  "stacktrace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.RFC3339NanoTimeEncoder,
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeName:     zapcore.FullNameEncoder,
	}
	var encoder zapcore.Encoder
	if format == "console" {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		encoder = zapcore.NewConsoleEncoder(enc)
	} else {
		encoder = zapcore.NewJSONEncoder(enc)
	}
	core := zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.AddStacktrace(zapcore.DPanicLevel))
}

// redisLog adapts zap to go-redis's logger. Its messages name addresses,
// never credentials (the client is built from options, not from the URL).
type redisLog struct{ log *zap.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...))
}

// defaultGCPercent is the garbage collector's target when GOGC is not set.
// A gateway keeps a small live heap (configs, keys, pools) and allocates a
// few KiB per request that die with it: at Go's default of 100 it collects
// every few hundred requests, and the collector's share of the CPU is
// throughput lost. 400 lets the heap grow to five times the live data
// (tens of MiB) between collections. GOGC (and GOMEMLIMIT) set in the
// environment win.
const defaultGCPercent = 400

func tuneGC(log *zap.Logger) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(defaultGCPercent)
	log.Debug("garbage collector target set", zap.Int("gogc", defaultGCPercent))
}
