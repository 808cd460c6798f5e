//go:build !cgo

package gpu

import (
	"context"
	"fmt"
)

// noNVML is the Source of a binary built without cgo: NVML cannot be
// loaded.
type noNVML struct{}

// NewNVML returns a Source whose Init fails with ErrNoLibrary: this binary
// was built without cgo. Build with `make build-health` for NVML.
func NewNVML() Source { return noNVML{} }

var errNoCgo = fmt.Errorf("%w: built without cgo (make build-health)", ErrNoLibrary)

func (noNVML) Init() error                                    { return errNoCgo }
func (noNVML) Count() (int, error)                            { return 0, errNoCgo }
func (noNVML) Sample(i int) Sample                            { return Sample{Index: i, Err: errNoCgo} }
func (noNVML) WatchXid(context.Context, func(XidEvent)) error { return errNoCgo }
