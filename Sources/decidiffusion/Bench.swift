import ArgumentParser
import DeciDiffusion
import DeciTensor
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks.", subcommands: [Kernels.self])

    struct Kernels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "GFLOP/s of the kernels that dominate a 512 px step (conv, attention, linear) and GB/s of GroupNorm+SiLU.")

        @Option(help: "Threads (0 = all cores).") var threads = 0
        @Option(help: "Timed repetitions per case (best is kept).") var repeats = 3
        @Option(help: "Precisions to run: f32, bf16.") var precision: [Precision] = Precision.allCases
        @Flag(help: "Print results as JSON lines.") var json = false

        func run() throws {
            Backend.threads = threads
            if !json { print("backend: \(Backend.info)") }
            let enc = JSONEncoder()
            _ = try KernelBenchmark.run(precisions: precision, repeats: repeats) { r in
                if json, let line = try? enc.encode(r) {
                    print(String(decoding: line, as: UTF8.self))
                } else {
                    print(String(format: "%-44@ %-5@ %8.4f s %8.1f %@", r.name as NSString, r.precision as NSString, r.seconds, r.rate,
                                 r.unit as NSString))
                }
                fflush(nil)
            }
        }
    }
}
