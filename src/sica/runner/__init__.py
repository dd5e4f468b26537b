"""Running agent versions: their environments and their processes, on trees and diffs of `sica.workspace`."""
