module mallocgc.bench/go

go 1.19
