package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/engine"
)

// reloader applies a reloaded configuration: the engine, or with discovery the Fleet, which adds the discovered
// mappings to the static ones.
type reloader interface {
	Reload(cfg *config.Config) engine.ReloadReport
}

var (
	_ reloader = (*engine.Engine)(nil)
	_ reloader = (*engine.Fleet)(nil)
)

// reloadOnHangup makes SIGHUP reload the configuration, instead of ending the process (the default), until ctx is
// done or the returned function is called. It loads and validates first: an invalid configuration is logged and
// the running one stays. A valid one, cut to this process's shard, goes to eng.Reload (the engine's, or the
// Fleet's), which keeps unchanged mappings with their memory.
func reloadOnHangup(ctx context.Context, flags *config.Flags, shard config.Shard, eng reloader, log *zap.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	go reloadLoop(ctx, hup, flags, shard, eng, log)
	return func() {
		signal.Stop(hup)
		cancel()
	}
}

func reloadLoop(ctx context.Context, hup <-chan os.Signal, flags *config.Flags, shard config.Shard, eng reloader, log *zap.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		cfg, err := config.Load(flags)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			log.Error("SIGHUP: configuration not reloaded, the running one stays: fix it and send SIGHUP again", zap.Error(err))
			continue
		}
		keepShard(cfg, shard, log)
		r := eng.Reload(cfg)
		log.Info("SIGHUP: configuration reloaded", zap.Strings("kept", r.Kept), zap.Strings("changed", r.Changed),
			zap.Strings("added", r.Added), zap.Strings("removed", r.Removed))
		if len(r.Restart) > 0 {
			log.Warn("SIGHUP: these settings changed but take effect only after a restart", zap.Strings("settings", r.Restart))
		}
	}
}
