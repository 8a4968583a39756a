package main

import (
	"log"
	"net/http"

	"github.com/gorilla/mux"
)

func main() {
	// 创建客户端管理器
	manager := NewClientManager()

	// 启动管理器
	go manager.Run()

	// 设置路由
	r := SetupRoutes(manager)

	// 启动服务器
	log.Println("聊天室服务器启动在 :8080")
	log.Fatal(http.ListenAndServe(":8080", r))
}
