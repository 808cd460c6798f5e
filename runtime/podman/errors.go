package podman

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"syscall"

	nettypes "github.com/containers/common/libnetwork/types"
	"github.com/containers/podman/v4/libpod/define"
	"github.com/containers/podman/v4/pkg/errorhandling"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// hostCauses are root causes the Podman API reports (the "cause" field of
// its error body, HTTP 500) that no retry will fix on that host, but
// another host may not have: something missing there. The API carries only
// text, so these are compared with the texts of Podman's own sentinel
// errors.
var hostCauses = []string{
	"image not known", // storage.ErrImageUnknown: image missing
	nettypes.ErrNoSuchNetwork.Error(),
	syscall.ENOENT.Error(), // device or mount source missing on the host
}

// hostPrefixes are root-cause prefixes that are host problems too.
var hostPrefixes = []string{
	"unresolvable CDI devices", // GPU name no CDI spec on the host provides
}

// templateCauses are permanent root causes that every host would report:
// problems of the template (its image, command or arguments).
var templateCauses = []string{
	define.ErrOCIRuntimeNotFound.Error(),         // command not found in the image
	define.ErrOCIRuntimePermissionDenied.Error(), // command not executable
	define.ErrInvalidArg.Error(),
}

// hostCause reports whether an API error's root cause is a host problem.
func hostCause(because string) bool {
	if slices.Contains(hostCauses, because) {
		return true
	}
	for _, p := range hostPrefixes {
		if strings.HasPrefix(because, p) {
			return true
		}
	}
	return false
}

// hostScoped reports whether err is a problem of the host it came from
// rather than of the template: the host did not answer (connection-level,
// also a timeout), or lacks the image, the network, a device or a mount
// source (hostCauses). A cancelled call is neither.
func hostScoped(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var re *runtime.Error
	if errors.As(err, &re) {
		return re.Host != ""
	}
	if em, ok := apiError(err); ok {
		return em.ResponseCode >= 500 && hostCause(em.Because)
	}
	return true
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
//
// Whether the failure is the host's or the template's is hostScoped.
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
		if hostCause(em.Because) || slices.Contains(templateCauses, em.Because) {
			return runtime.ClassConfig
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
