module stowage.e2e/cluster/images

go 1.25.0
