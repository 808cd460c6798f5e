package podman

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"syscall"

	nettypes "github.com/containers/common/libnetwork/types"
	"github.com/containers/podman/v4/libpod/define"
	"github.com/containers/podman/v4/pkg/errorhandling"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// permanentCauses are root causes the Podman API reports (the "cause" field
// of its error body, HTTP 500) that no retry will fix. The API carries only
// text, so these are compared with the texts of Podman's own sentinel errors.
var permanentCauses = []string{
	"image not known", // storage.ErrImageUnknown: image missing
	nettypes.ErrNoSuchNetwork.Error(),
	define.ErrOCIRuntimeNotFound.Error(),         // command not found in the image
	define.ErrOCIRuntimePermissionDenied.Error(), // command not executable
	define.ErrInvalidArg.Error(),
	syscall.ENOENT.Error(), // device or mount source missing on the host
}

// permanentPrefixes are root-cause prefixes that are permanent too.
var permanentPrefixes = []string{
	"unresolvable CDI devices", // GPU name no CDI spec on the host provides
}

// apiError returns the Podman API error model in err's chain, if any.
func apiError(err error) (*errorhandling.ErrorModel, bool) {
	var em *errorhandling.ErrorModel
	if errors.As(err, &em) {
		return em, true
	}
	var ev errorhandling.ErrorModel
	if errors.As(err, &ev) {
		return &ev, true
	}
	return nil, false
}

// classify maps an error from a Podman API call to a failure class:
//   - an *runtime.Error keeps its class;
//   - context deadline/cancel, connection errors: Transient;
//   - API 4xx (but 409 conflict): Config; 409: Transient;
//   - API 5xx whose root cause is a known permanent one (missing image,
//     network, command, CDI device, device file): Config; other 5xx: Transient.
func classify(err error) runtime.Class {
	if err == nil {
		return ""
	}
	var re *runtime.Error
	if errors.As(err, &re) {
		return re.Class
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return runtime.ClassTransient
	}
	if em, ok := apiError(err); ok {
		code := em.ResponseCode
		switch {
		case code == http.StatusConflict:
			return runtime.ClassTransient
		case code >= 400 && code < 500:
			return runtime.ClassConfig
		}
		for _, c := range permanentCauses {
			if em.Because == c {
				return runtime.ClassConfig
			}
		}
		for _, p := range permanentPrefixes {
			if strings.HasPrefix(em.Because, p) {
				return runtime.ClassConfig
			}
		}
		return runtime.ClassTransient
	}
	// Connection refused, socket missing, EOF, TLS/SSH trouble: all passing.
	return runtime.ClassTransient
}

// isNotFound reports whether err is the API saying the object is absent.
func isNotFound(err error) bool {
	em, ok := apiError(err)
	return ok && em.ResponseCode == http.StatusNotFound
}
