module example.com/invicta

go 1.19
