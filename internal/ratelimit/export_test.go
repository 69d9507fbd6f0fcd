package ratelimit

import "github.com/redis/go-redis/v9"

// RedisClient returns r's go-redis client, for the tests of package
// ratelimit_test to hook into.
func RedisClient(r *Redis) redis.UniversalClient { return r.rdb }
