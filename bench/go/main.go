// A program that links popular Go SDKs, for the precision benchmark (bench/build_go_image.sh).
package main

import (
	"fmt"

	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/go-sql-driver/mysql"
	"github.com/golang-jwt/jwt/v4"
	"github.com/jackc/pgx/v4"
	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v72"
	"golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
)

func main() {
	_, _ = session.NewSession()
	fmt.Println(mysql.Config{}, jwt.SigningMethodHS256, pgx.ConnConfig{}, redis.Options{}, stripe.Key,
		ssh.ClientConfig{}, oauth2.Config{}, grpc.Version)
}
