// Command findpython says which Python the host would run .py plugins
// with, or, loudly, that there is none and the Python tests are skipped.
// `make test` runs it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/pluginpool/pluginpool/internal/python"
)

func main() {
	py, err := python.Find(context.Background(), ".")
	if err != nil {
		fmt.Fprintf(os.Stderr, "\n"+
			"**********************************************************************\n"+
			"* WARNING: the Python SDK and Python plugin tests were SKIPPED:      *\n"+
			"* no Python interpreter here can import grpc and google.protobuf.   *\n"+
			"**********************************************************************\n%v\n\n", err)
		return
	}
	fmt.Printf("Python plugins run with %s (Python %s)\n", py.Path, py.Version)
}
