// Peer HNSW for the compute engine benchmark: C++ hnswlib itself (the headers inside the hnswlib-node
// package), on the same files, parameters and timing rules as the C# side and hnswlib-node.
// Build: g++ -O3 -march=native -std=c++17 -I node_modules/hnswlib-node/src hnsw_cpp.cpp -o hnsw_cpp
// Usage: hnsw_cpp TRAIN.f32 TEST.f32 GT.i32 M EF_CONSTRUCTION K EF1,EF2,...
// Vector files: uint32 count, uint32 dim, count*dim float32 LE; gt.i32: uint32 count, uint32 k, count*k int32
// ids, nearest first. One thread. Prints one JSON object on stdout: build_s, rss_mb, points (ef, recall, qps) and
// gt_agreement, the share of GT.i32's ids for the first 100 queries that a brute force here finds within the k-th
// exact distance (an independent check of the ground truth both sides are scored against).
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

template <typename T>
struct Matrix {
    uint32_t count = 0;
    uint32_t dim = 0;
    std::vector<T> data;
    const T* row(size_t i) const { return data.data() + i * dim; }
};

template <typename T>
Matrix<T> read_matrix(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    Matrix<T> m;
    in.read(reinterpret_cast<char*>(&m.count), 4);
    in.read(reinterpret_cast<char*>(&m.dim), 4);
    m.data.resize(static_cast<size_t>(m.count) * m.dim);
    in.read(reinterpret_cast<char*>(m.data.data()), static_cast<std::streamsize>(m.data.size() * sizeof(T)));
    if (!in) throw std::runtime_error(path + " is shorter than its header says");
    return m;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double rss_mb() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 8) {
        std::fprintf(stderr, "usage: %s TRAIN.f32 TEST.f32 GT.i32 M EF_CONSTRUCTION K EF1,EF2,...\n", argv[0]);
        return 2;
    }
    try {
        auto train = read_matrix<float>(argv[1]);
        auto test = read_matrix<float>(argv[2]);
        auto gt = read_matrix<int32_t>(argv[3]);
        const size_t m = std::strtoul(argv[4], nullptr, 10);
        const size_t ef_construction = std::strtoul(argv[5], nullptr, 10);
        const size_t k = std::strtoul(argv[6], nullptr, 10);
        std::vector<size_t> efs;
        std::stringstream list(argv[7]);
        for (std::string item; std::getline(list, item, ',');) efs.push_back(std::strtoul(item.c_str(), nullptr, 10));
        if (train.dim != test.dim || gt.count < test.count || gt.dim < k) throw std::runtime_error("files do not match");

        // Cross-check of the ground truth the C# side computed: exact neighbours of the first queries by brute force
        // here (squared L2, double accumulation), counting the C# ids that are within the k-th exact distance (ties).
        const size_t checked_queries = std::min<size_t>(test.count, 100);
        long agree = 0;
        for (size_t q = 0; q < checked_queries; q++) {
            std::vector<double> distances(train.count);
            for (size_t i = 0; i < train.count; i++) {
                double sum = 0;
                for (size_t j = 0; j < train.dim; j++) {
                    const double d = static_cast<double>(test.row(q)[j]) - train.row(i)[j];
                    sum += d * d;
                }
                distances[i] = sum;
            }
            std::vector<double> sorted = distances;
            std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end());
            const double kth = sorted[k - 1];
            for (size_t j = 0; j < k; j++) {
                const auto id = gt.row(q)[j];
                if (id >= 0 && static_cast<size_t>(id) < train.count && distances[id] <= kth * (1 + 1e-6)) agree++;
            }
        }
        const double gt_agreement = checked_queries == 0 ? 1.0 : static_cast<double>(agree) / (checked_queries * k);

        hnswlib::L2Space space(train.dim);
        hnswlib::HierarchicalNSW<float> index(&space, train.count, m, ef_construction, 100);
        auto t0 = std::chrono::steady_clock::now();
        for (size_t i = 0; i < train.count; i++) index.addPoint(train.row(i), i);
        const double build_s = seconds_since(t0);

        // Warm-up for two seconds over the ef values in turn, then each ef over whole passes of the query set until
        // a second has gone by (recall from the first pass), as the C# side and hnswlib-node do.
        auto warm = std::chrono::steady_clock::now();
        size_t sink = 0;
        for (size_t pass = 0; seconds_since(warm) < 2.0; pass++) {
            index.setEf(efs[pass % efs.size()]);
            for (size_t q = 0; q < test.count; q++) sink += index.searchKnn(test.row(q), k).size();
        }

        std::ostringstream points;
        for (size_t e = 0; e < efs.size(); e++) {
            index.setEf(efs[e]);
            std::vector<std::vector<hnswlib::labeltype>> found(test.count);
            long searches = 0;
            t0 = std::chrono::steady_clock::now();
            do {
                for (size_t q = 0; q < test.count; q++) {
                    auto result = index.searchKnn(test.row(q), k);
                    if (searches == 0) {
                        while (!result.empty()) {
                            found[q].push_back(result.top().second);
                            result.pop();
                        }
                    } else {
                        sink += result.size();
                    }
                }
                searches += test.count;
            } while (seconds_since(t0) < 1.0);
            const double seconds = seconds_since(t0);
            long hits = 0;
            for (size_t q = 0; q < test.count; q++) {
                std::unordered_set<int32_t> truth(gt.row(q), gt.row(q) + k);
                for (auto id : found[q]) hits += truth.count(static_cast<int32_t>(id));
            }
            points << (e == 0 ? "" : ",") << "{\"ef\":" << efs[e] << ",\"recall\":" << static_cast<double>(hits) / (test.count * k)
                   << ",\"qps\":" << searches / seconds << "}";
        }
        std::printf("{\"build_s\":%.4f,\"rss_mb\":%.1f,\"gt_checked\":%zu,\"gt_agreement\":%.6f,\"sink\":%zu,\"points\":[%s]}\n", build_s, rss_mb(),
                    checked_queries, gt_agreement, sink, points.str().c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hnsw_cpp: %s\n", e.what());
        return 1;
    }
}
