// What one query costs hnswlib, counted: distance computations and graph hops per query (hnswlib's
// own counters, which searchKnn leaves off; bench/query-cost.ts compiles this against a copy of
// hnswlib-node's headers with them on, with the addon's flags).
// Usage: hnsw-work INDEX DIM QUERIES.f32 K EF   (prints one JSON line)
#include "hnswlib/hnswlib.h"
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s INDEX DIM QUERIES.f32 K EF\n", argv[0]);
    return 2;
  }
  const int dim = atoi(argv[2]), k = atoi(argv[4]), ef = atoi(argv[5]);
  hnswlib::InnerProductSpace space(dim);
  hnswlib::HierarchicalNSW<float> index(&space, argv[1]);
  index.setEf(ef);
  std::vector<float> queries;
  FILE* f = fopen(argv[3], "rb");
  if (!f) {
    perror(argv[3]);
    return 3;
  }
  float buf[4096];
  for (size_t got; (got = fread(buf, sizeof(float), 4096, f)) > 0;) queries.insert(queries.end(), buf, buf + got);
  fclose(f);
  const size_t count = queries.size() / dim;
  index.metric_distance_computations = 0;
  index.metric_hops = 0;
  for (size_t q = 0; q < count; q++) index.searchKnn(queries.data() + q * dim, k);
  printf("{\"distances\":%.1f,\"hops\":%.1f}\n", double(index.metric_distance_computations) / count, double(index.metric_hops) / count);
}
