package demo

import (
	"cmp"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logRing keeps the engine's last log lines for the live view and hands each line to the screen, which prints
// it at once in plain mode. zap writes one entry per Write.
type logRing struct {
	mu    sync.Mutex
	lines []string
	keep  int
	start time.Time
	out   *screen
}

func newLogRing(start time.Time, keep int, out *screen) *logRing {
	return &logRing{keep: keep, start: start, out: out}
}

func (r *logRing) Write(p []byte) (int, error) {
	now := time.Now()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		r.mu.Lock()
		r.lines = append(r.lines, fmt.Sprintf("%7.2fs  %s", max(now.Sub(r.start), 0).Seconds(), l))
		if len(r.lines) > r.keep {
			r.lines = r.lines[len(r.lines)-r.keep:]
		}
		r.mu.Unlock()
		r.out.line(now, "engine", l)
	}
	return len(p), nil
}

func (r *logRing) Sync() error { return nil }

// last returns up to n of the newest lines, oldest first.
func (r *logRing) last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines[max(len(r.lines)-n, 0):]...)
}

// newLogger is the engine's logger: zap console lines ("INFO  orders  registered targets  {...}"), coloured
// levels in the live view, never JSON over it.
func newLogger(ring *logRing, live bool) *zap.Logger {
	level := zapcore.CapitalLevelEncoder
	if live {
		level = zapcore.CapitalColorLevelEncoder
	}
	enc := zapcore.NewConsoleEncoder(zapcore.EncoderConfig{
		LevelKey:         "level",
		NameKey:          "sync",
		MessageKey:       "msg",
		EncodeLevel:      level,
		EncodeDuration:   zapcore.StringDurationEncoder,
		EncodeName:       func(n string, enc zapcore.PrimitiveArrayEncoder) { enc.AppendString(fmt.Sprintf("%-*s", nameWidth, n)) },
		ConsoleSeparator: "  ",
	})
	return zap.New(mappingCore{Core: zapcore.NewCore(enc, zapcore.AddSync(ring), zapcore.InfoLevel)})
}

// mappingCore shows the engine's "sync" field as the line's name and drops the fields every line of a mapping
// repeats (endpoint, target group, DNS server): the view shows them once, and the lines must fit a terminal.
type mappingCore struct {
	zapcore.Core
	sync string
}

func dropped(key string) bool {
	switch key {
	case "sync", "endpoint", "target_group", "dns_server", "dry_run": // the demo never runs dry
		return true
	}
	return false
}

func (c mappingCore) filter(fs []zapcore.Field) ([]zapcore.Field, string) {
	name := ""
	keep := make([]zapcore.Field, 0, len(fs))
	for _, f := range fs {
		if f.Key == "sync" && f.Type == zapcore.StringType {
			name = f.String
		}
		if !dropped(f.Key) {
			keep = append(keep, f)
		}
	}
	return keep, name
}

func (c mappingCore) With(fs []zapcore.Field) zapcore.Core {
	keep, name := c.filter(fs)
	return mappingCore{Core: c.Core.With(keep), sync: cmp.Or(name, c.sync)}
}

func (c mappingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c mappingCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	keep, name := c.filter(fs)
	e.LoggerName = cmp.Or(name, c.sync, e.LoggerName)
	return c.Core.Write(e, keep)
}
