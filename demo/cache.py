"""The demo's product cache in Redis: a plain TTL cache, or one bounded by entry count.

Redis bounds a cache by bytes (maxmemory), and what it counts moves with client buffers
and allocator overhead, so "N entries" is only approximate there. `--cache-entries N`
keeps an exact LRU of N entries instead, in Redis itself so every worker shares it: a
sorted set scores each key by a recency counter, and a write past N evicts the oldest.
That makes the cache advisor's recommended size something a test can set exactly.
"""

from __future__ import annotations

import redis

# GET that refreshes the key's recency when it hits.
_GET = """
local value = redis.call('GET', KEYS[1])
if value then redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), KEYS[1]) end
return value
"""

# SET with a TTL, then evict the least recently used keys beyond ARGV[3] entries.
_SET = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), KEYS[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', oldest[i]) end
end
"""

RECENCY = "demo:lru"
CLOCK = "demo:lru:clock"


class ProductCache:
    """get/put of serialized products; `entries` set means an exact LRU of that many keys."""

    def __init__(self, url: str, ttl_s: int, entries: int | None = None):
        self.client = redis.Redis.from_url(url, socket_timeout=1)
        self.ttl_s = ttl_s
        self.entries = entries
        if entries:
            self._get = self.client.register_script(_GET)
            self._set = self.client.register_script(_SET)

    def get(self, key: str) -> bytes | None:
        if not self.entries:
            return self.client.get(key)
        return self._get(keys=[key, RECENCY, CLOCK])

    def put(self, key: str, value: str) -> None:
        if not self.entries:
            self.client.setex(key, self.ttl_s, value)
        else:
            self._set(keys=[key, RECENCY, CLOCK], args=[value, self.ttl_s, self.entries])
