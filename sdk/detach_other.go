//go:build !unix

package sdk

func detachStdin() {}
func watchParent() {}
