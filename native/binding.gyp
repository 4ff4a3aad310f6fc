{
  "targets": [
    {
      "target_name": "preprocess",
      "sources": ["addon.c", "resample.c"],
      "cflags": ["-O3", "-std=c11"]
    }
  ]
}
