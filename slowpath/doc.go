// Package slowpath owns everything that is not per packet: the validated
// configuration (subpackage config), turning it into fast-path tables with
// stable set ids and server slots, resolving server MAC addresses from the
// kernel's neighbour table, publishing table generations to the workers by
// atomic swap, and the control API. Nothing here ever makes a worker wait:
// workers only ever load a pointer the slow path stored.
package slowpath
