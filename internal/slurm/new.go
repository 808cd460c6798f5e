package slurm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/user"

	"github.com/slurm-elastic/slurm-elastic/conf"
)

// New builds the Client c asks for: "rest", "scontrol", or "auto" (the
// default): REST when rest_url is set, slurmrestd speaks one of RESTParsers
// with a node update (the newest both sides speak is used) and a ping
// answers within the timeout, else scontrol (Slurm 22.05's slurmrestd, for
// one, has no node update). "rest" against a slurmrestd without a parser
// it speaks fails, naming what that slurmrestd serves. Zero values get
// defaults (timeout 10s, scontrol looked up in DefaultSearchPath, user =
// the user the process runs as). The choice and the data parser are
// logged. With "rest" or with "auto" and a rest_url it blocks for the
// negotiation (GET /openapi/v3) and, for "auto", a ping; "scontrol" does
// not block.
func New(ctx context.Context, c conf.SlurmConf, log *slog.Logger) (Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Backend == "" {
		c.Backend = conf.BackendAuto
	}
	if c.User == "" {
		if u, err := user.Current(); err == nil {
			c.User = u.Username
		}
	}
	rest := func() (*REST, error) {
		return NewREST(RESTOptions{URL: c.RESTURL, TokenFile: c.TokenFile, User: c.User, Timeout: c.Timeout})
	}
	sctl := func() (*Scontrol, error) {
		return NewScontrol(ScontrolOptions{Path: c.Scontrol, Timeout: c.Timeout})
	}
	switch c.Backend {
	case conf.BackendREST:
		r, err := rest()
		if err != nil {
			return nil, err
		}
		v, err := r.Negotiate(ctx)
		switch {
		case errors.Is(err, ErrRESTUnsupported):
			return nil, fmt.Errorf("slurm.backend rest: %w", err)
		case err != nil: // slurmrestd not answering now: negotiate on first use
			log.Warn("slurm backend: rest (configured); data parser not negotiated yet", "backend", conf.BackendREST, "url", c.RESTURL, "user", c.User, "error", err)
		default:
			log.Info("slurm backend: rest (configured)", "backend", conf.BackendREST, "url", c.RESTURL, "user", c.User, "parser", v)
		}
		return r, nil
	case conf.BackendScontrol:
		s, err := sctl()
		if err != nil {
			return nil, err
		}
		log.Info("slurm backend: scontrol (configured)", "backend", conf.BackendScontrol, "scontrol", s.Path())
		return s, nil
	case conf.BackendAuto:
		var restErr error
		if c.RESTURL != "" {
			r, err := rest()
			if err == nil {
				err = r.Ping(ctx)
			}
			if err == nil {
				v, _ := r.Negotiate(ctx) // remembered by Ping
				log.Info("slurm backend: rest (auto: slurmrestd answered)", "backend", conf.BackendREST, "url", c.RESTURL, "user", c.User, "parser", v)
				return r, nil
			}
			restErr = err
		}
		s, err := sctl()
		if err != nil {
			if restErr != nil {
				return nil, fmt.Errorf("slurm backend auto: %w", errors.Join(restErr, err))
			}
			return nil, fmt.Errorf("slurm backend auto: %w", err)
		}
		switch {
		case errors.Is(restErr, ErrRESTUnsupported):
			log.Info("slurm backend: scontrol (auto: slurmrestd speaks no data parser with a node update that this backend supports)", "backend", conf.BackendScontrol, "scontrol", s.Path(), "url", c.RESTURL, "error", restErr)
		case restErr != nil:
			log.Warn("slurm backend: scontrol (auto: slurmrestd unusable)", "backend", conf.BackendScontrol, "scontrol", s.Path(), "url", c.RESTURL, "error", restErr)
		default:
			log.Info("slurm backend: scontrol (auto: no rest_url)", "backend", conf.BackendScontrol, "scontrol", s.Path())
		}
		return s, nil
	default:
		return nil, fmt.Errorf("slurm.backend %q: want auto, rest or scontrol", c.Backend)
	}
}
