// What one query costs hnswlib, counted: distance computations and graph hops per query (hnswlib's
// own counters, which searchKnn leaves off; bench/query-cost.ts compiles this against a copy of
// hnswlib-node's headers with them on), and ms per query in plain C++ with the addon's flags.
// Usage: hnsw-work INDEX DIM QUERIES.f32 K EF   (prints one JSON line)
#include "hnswlib/hnswlib.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 6) return 2;
  const int dim = atoi(argv[2]), k = atoi(argv[4]), ef = atoi(argv[5]);
  hnswlib::InnerProductSpace space(dim);
  hnswlib::HierarchicalNSW<float> index(&space, argv[1]);
  index.setEf(ef);
  std::vector<float> queries;
  FILE* f = fopen(argv[3], "rb");
  if (!f) return 3;
  float buf[4096];
  for (size_t got; (got = fread(buf, sizeof(float), 4096, f)) > 0;) queries.insert(queries.end(), buf, buf + got);
  fclose(f);
  const size_t count = queries.size() / dim;
  index.metric_distance_computations = 0;
  index.metric_hops = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t q = 0; q < count; q++) index.searchKnn(queries.data() + q * dim, k);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  printf("{\"distances\":%.1f,\"hops\":%.1f,\"ms\":%.4f}\n", double(index.metric_distance_computations) / count,
         double(index.metric_hops) / count, ms / count);
}
