module example.com/deadsfu

go 1.19
