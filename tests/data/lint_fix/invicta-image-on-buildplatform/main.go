package main

import (
	"fmt"
	"runtime"
)

var Version = "dev"

func main() { fmt.Println("sfu", Version, runtime.GOOS+"/"+runtime.GOARCH) }
