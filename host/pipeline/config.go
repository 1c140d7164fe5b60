package pipeline

import (
	"fmt"

	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pool"
)

// FromConfig returns the Spec for pipeline pp of config file f: each
// stage's pool.Config (the plugin's settings with the stage's overrides,
// see config.File.StageConfig), the input file and format, the output file
// and the order. An input or output of "-" (stdin, stdout) is left unset
// for the caller to fill in (Input, AbortInput, Output), as are the stages'
// Logger and Stderr. The Spec shares no memory with f.
func FromConfig(f *config.File, pp *config.Pipeline) (Spec, error) {
	if f == nil || pp == nil {
		return Spec{}, fmt.Errorf("%w: FromConfig needs a config file and a pipeline", ErrInvalidSpec)
	}
	spec := Spec{
		Name:      pp.Name,
		Stages:    make([]pool.Config, len(pp.Stages)),
		Format:    pp.InputFormat,
		Unordered: !pp.Ordered,
	}
	for i := range pp.Stages {
		cfg, err := f.StageConfig(pp, i)
		if err != nil {
			return Spec{}, fmt.Errorf("pipeline %s: stage %d: %w", pp.Name, i+1, err)
		}
		spec.Stages[i] = cfg
	}
	if pp.Input != "-" {
		spec.InputPath = pp.Input
	}
	if pp.Output != "-" {
		spec.OutputPath = pp.Output
	}
	return spec, nil
}
