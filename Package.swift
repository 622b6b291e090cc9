// swift-tools-version: 6.0
import PackageDescription

// Layering (each target only imports the ones below it):
//   decidiffusion (CLI) -> DeciBenchmarks -> DeciDiffusion (pipeline) -> DeciModels -> DeciWeights, DeciTensor -> CDeciKernels
//   DeciSchedulers, DeciTokenizer, DeciRandom, DeciImage are independent of the tensor layer.
//   DeciJSON (JSON string quoting) is a leaf shared by DeciWeights and DeciImage, so neither needs the other.
// Only DeciTensor may import CDeciKernels: a GPU backend later replaces what sits below DeciTensor.

// oneDNN: scripts/fetch-onednn.sh puts oneDNN 3.x in .deps/onednn (x86-64 Linux); these flags
// prefer it and otherwise fall through to the system's oneDNN (2.x or 3.x; the shim takes both).
// They are unconditional so that the manifest does not depend on the file system.
let localOneDNN = Context.packageDirectory + "/.deps/onednn"
let kernelCFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno", "-I", localOneDNN + "/include"])]
let kernelLinkerFlags: [LinkerSetting] = [
    .unsafeFlags(["-L", localOneDNN + "/lib", "-Xlinker", "-rpath", "-Xlinker", localOneDNN + "/lib",
                  "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN/../../.deps/onednn/lib"], .when(platforms: [.linux])),
]

let package = Package(
    name: "DeciDiffusion",
    platforms: [.macOS(.v14)],
    products: [
        // The pipeline and the public modules it is built from, which embedders import directly
        // (DeciImage to write PNGs, DeciSchedulers or DeciModels to go below the pipeline).
        .library(name: "DeciDiffusion", targets: ["DeciDiffusion", "DeciModels", "DeciSchedulers", "DeciTokenizer", "DeciRandom",
                                                  "DeciImage", "DeciWeights", "DeciTensor"]),
        .executable(name: "decidiffusion", targets: ["decidiffusion"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation` (DocC); a command plugin, so builds never run it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // The HTTP server (`decidiffusion serve`): Hummingbird 2 on SwiftNIO, swift-log request logs,
        // swift-prometheus for /metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // multipart/form-data parsing for the OpenAI image-edit route.
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        // `decidiffusion download`: HTTP client for the Hugging Face Hub (DeciHub), SHA-256/SHA-1 checks.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // The PostgreSQL job queue (`serve --queue postgresql://...`, `worker`); only DeciQueuePostgres links it.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // C shim over oneDNN plus the element-wise kernels that need AVX-512 / bf16 instructions
        // and must share oneDNN's OpenMP thread pool.
        .target(
            name: "CDeciKernels",
            cSettings: kernelCFlags,
            linkerSettings: kernelLinkerFlags + [.linkedLibrary("dnnl"), .linkedLibrary("gomp", .when(platforms: [.linux])), .linkedLibrary("m")]
        ),
        .target(name: "DeciTensor", dependencies: ["CDeciKernels"]),
        .target(name: "DeciJSON"),
        .target(name: "DeciWeights", dependencies: ["DeciTensor", "DeciJSON"]),
        .target(name: "DeciRandom"),
        .target(name: "DeciSchedulers", dependencies: ["DeciRandom"]),
        .target(name: "DeciTokenizer"),
        .target(
            name: "CImageCodecs",
            linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg"), .linkedLibrary("z")]
        ),
        .target(name: "DeciImage", dependencies: ["CImageCodecs", "DeciJSON"]),
        .target(name: "DeciModels", dependencies: ["DeciTensor", "DeciWeights"]),
        .target(
            name: "DeciDiffusion",
            dependencies: ["DeciModels", "DeciSchedulers", "DeciTokenizer", "DeciRandom", "DeciImage", "DeciWeights", "DeciTensor"]
        ),
        // Kernel and pipeline timing and random-weight checkpoints for the CLI's `bench`; kept out of
        // the DeciDiffusion library so programs that embed the pipeline do not link them.
        .target(name: "DeciBenchmarks", dependencies: ["DeciDiffusion", "DeciModels", "DeciWeights", "DeciTensor"]),
        // The HTTP front end over GenerationService (native job API, /metrics, /healthz, the web page).
        .target(
            name: "DeciServer",
            dependencies: ["DeciDiffusion", "DeciImage", "DeciSchedulers",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "MultipartKit", package: "multipart-kit")]
        ),
        // The PostgreSQL-backed job queue: many API nodes and workers on many machines share one database.
        .target(
            name: "DeciQueuePostgres",
            dependencies: ["DeciDiffusion", .product(name: "PostgresNIO", package: "postgres-nio"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        // Hugging Face Hub downloads into the shared hub cache (`decidiffusion download`); its own
        // target so the pipeline library never links an HTTP client.
        .target(
            name: "DeciHub",
            dependencies: [.product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .executableTarget(
            name: "decidiffusion",
            dependencies: ["DeciDiffusion", "DeciBenchmarks", "DeciServer", "DeciHub", "DeciQueuePostgres", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .target(name: "TestSupport", path: "Sources/TestSupport"),
        .testTarget(name: "DeciTensorTests", dependencies: ["DeciTensor", "DeciWeights", "TestSupport"]),
        .testTarget(name: "DeciJSONTests", dependencies: ["DeciJSON"]),
        .testTarget(name: "DeciWeightsTests", dependencies: ["DeciWeights", "TestSupport"]),
        .testTarget(name: "DeciRandomTests", dependencies: ["DeciRandom", "TestSupport"]),
        .testTarget(name: "DeciSchedulersTests", dependencies: ["DeciSchedulers", "DeciRandom", "TestSupport"]),
        .testTarget(name: "DeciTokenizerTests", dependencies: ["DeciTokenizer", "TestSupport"]),
        .testTarget(name: "DeciImageTests", dependencies: ["DeciImage", "TestSupport"]),
        .testTarget(name: "DeciModelsTests", dependencies: ["DeciModels", "DeciWeights", "DeciTensor", "TestSupport"]),
        .testTarget(name: "DeciDiffusionTests", dependencies: ["DeciDiffusion", "TestSupport"]),
        .testTarget(name: "DeciServerTests", dependencies: ["DeciServer", "DeciDiffusion", "DeciImage", "TestSupport",
                                                            .product(name: "HummingbirdTesting", package: "hummingbird"),
                                                            .product(name: "MultipartKit", package: "multipart-kit"),
                                                            .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "DeciHubTests", dependencies: ["DeciHub", "DeciDiffusion", "DeciImage", "TestSupport",
                                                         .product(name: "Hummingbird", package: "hummingbird"),
                                                         .product(name: "HummingbirdTesting", package: "hummingbird")]),
        .testTarget(name: "DeciQueuePostgresTests", dependencies: ["DeciQueuePostgres", "DeciDiffusion", "DeciImage", "TestSupport"]),
        .testTarget(name: "DeciBenchmarksTests", dependencies: ["DeciBenchmarks", "DeciModels", "DeciWeights"]),
    ]
)
