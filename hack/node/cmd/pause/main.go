// Command pause is the node tier's pod sandbox image: it waits until it is told to stop.
// (No registry is reachable, so the usual pause image is replaced by this static binary.)
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
