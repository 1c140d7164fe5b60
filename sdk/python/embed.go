// Package python holds the pluginpool Python SDK, the `pluginpool` package
// beside this file, and embeds its sources so that a host binary carries
// the SDK it speaks the protocol of: the host runs `.py` plugins with this
// copy first on PYTHONPATH (see internal/python), so a plugin needs no
// `pip install` and never meets an SDK of another version.
package python

import "embed"

// FS holds the pluginpool package's sources: pluginpool/*.py and its
// py.typed marker.
//
//go:embed pluginpool/*.py pluginpool/py.typed
var FS embed.FS
