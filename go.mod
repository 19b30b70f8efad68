module github.com/dstream/dstream

go 1.26.8
