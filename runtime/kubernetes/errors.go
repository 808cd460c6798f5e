package kubernetes

import (
	"context"
	"errors"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/slurm-elastic/slurm-elastic/runtime"
)

// quotaPrefix starts the message of a create the ResourceQuota admission
// refused ("exceeded quota: compute, requested: ..."). The API marks the
// refusal only as Forbidden, like a missing RBAC permission; its message
// is the one thing that tells them apart.
const quotaPrefix = "exceeded quota"

// isQuota reports whether err is a create refused by a ResourceQuota.
func isQuota(err error) bool {
	var se apierrors.APIStatus
	if !apierrors.IsForbidden(err) || !errors.As(err, &se) {
		return false
	}
	return strings.Contains(se.Status().Message, quotaPrefix)
}

// classify maps an error of a Kubernetes API call to a failure class:
//   - an *runtime.Error keeps its class;
//   - context deadline/cancel: Transient;
//   - a create refused by a ResourceQuota: Capacity (retry later);
//   - Forbidden (RBAC), Unauthorized, Invalid, BadRequest, NotFound (no
//     such namespace), and other permanent refusals: Config;
//   - Conflict, AlreadyExists, timeouts, 429, 5xx and every error that is
//     not an API status (connection refused, TLS, DNS): Transient.
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
	switch {
	case isQuota(err):
		return runtime.ClassCapacity
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err), apierrors.IsInvalid(err),
		apierrors.IsBadRequest(err), apierrors.IsNotFound(err), apierrors.IsMethodNotSupported(err),
		apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err), apierrors.IsRequestEntityTooLargeError(err):
		return runtime.ClassConfig
	}
	return runtime.ClassTransient
}
