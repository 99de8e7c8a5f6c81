module example.com/docsgen

go 1.19
