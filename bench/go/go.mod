module example.internal/precision

go 1.19

require (
	github.com/aws/aws-sdk-go v1.44.334
	github.com/go-sql-driver/mysql v1.7.1
	github.com/golang-jwt/jwt/v4 v4.5.0
	github.com/jackc/pgx/v4 v4.18.1
	github.com/redis/go-redis/v9 v9.0.5
	github.com/stripe/stripe-go/v72 v72.122.0
	golang.org/x/crypto v0.14.0
	golang.org/x/oauth2 v0.13.0
	google.golang.org/grpc v1.58.3
)
