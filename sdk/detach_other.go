//go:build !unix

package sdk

import "os"

func detachStdin() {}
func watchParent() {}

func unbufferStderr(*os.File) {}
