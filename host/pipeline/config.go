package pipeline

import (
	"fmt"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pool"
)

// FromConfig returns the Spec for pipeline pp of config file f: its
// stages, the input file and format, the output file and the order. An
// input or output of "-" (stdin, stdout) is left unset for the caller to
// fill in (Input, AbortInput, Output). The Spec shares no memory with f.
//
// start says where each stage runs: it gets the stage's pool.Config (the
// plugin's settings with the stage's overrides, see
// config.File.StageConfig; Logger and Stderr unset) and returns the
// function that starts its executor, e.g. pool.Starter after setting the
// Logger, or one that starts the plugin on a cluster.
func FromConfig(f *config.File, pp *config.Pipeline, start func(pool.Config) backend.StartFunc) (Spec, error) {
	if f == nil || pp == nil || start == nil {
		return Spec{}, fmt.Errorf("%w: FromConfig needs a config file, a pipeline and a start function", ErrInvalidSpec)
	}
	spec := Spec{
		Name:      pp.Name,
		Stages:    make([]backend.StartFunc, len(pp.Stages)),
		Format:    pp.InputFormat,
		Unordered: !pp.Ordered,
	}
	for i := range pp.Stages {
		cfg, err := f.StageConfig(pp, i)
		if err != nil {
			return Spec{}, fmt.Errorf("pipeline %s: stage %d: %w", pp.Name, i+1, err)
		}
		spec.Stages[i] = start(cfg)
	}
	if pp.Input != "-" {
		spec.InputPath = pp.Input
	}
	if pp.Output != "-" {
		spec.OutputPath = pp.Output
	}
	return spec, nil
}
