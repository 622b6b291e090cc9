import Foundation
import Testing
import TestSupport
@testable import DeciTokenizer

/// Throughput report (printed, never asserted): tokens per second over the fixture prompt set, with the
/// word cache cold and warm, plus the time to load the tokenizer files. Meaningful in release builds:
/// `swift test -c release -Xswiftc -enable-testing --filter TokenizerBenchmark`.
@Suite(.serialized) struct TokenizerBenchmark {
    @Test(arguments: CLIPTokenizer.Compatibility.allCases)
    func tokensPerSecond(_ mode: CLIPTokenizer.Compatibility) throws {
        let clock = ContinuousClock()
        var tokenizer: CLIPTokenizer?
        let load = try clock.measure { tokenizer = try CLIPTokenizer(directory: TokenizerFolders.clip, compatibility: mode) }
        guard let t = tokenizer else { return }
        let prompts = try PromptFixture.load("clip_prompts.json").cases.map(\.text)
        var tokens = 0
        let cold = clock.measure {
            for p in prompts { tokens += t.contentTokenIDs(p).count }
        }
        var warmTokens = 0
        let rounds = 5
        let warm = clock.measure {
            for _ in 0..<rounds { for p in prompts { warmTokens += t.contentTokenIDs(p).count } }
        }
        #expect(warmTokens == rounds * tokens)
        func rate(_ n: Int, _ d: Duration, _ unit: String = "tokens/s") -> String {
            let s = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            return String(format: "%.0f ", Double(n) / s) + unit
        }
        print("[tokenizer benchmark \(mode)] load \(load); \(prompts.count) prompts, \(tokens) tokens: "
              + "cold cache \(rate(tokens, cold)), warm cache \(rate(warmTokens, warm)); "
              + "encode() of one 77-token prompt \(rate(1, clock.measure { _ = t.encode(prompts[12]) }, "prompts/s"))")
        t.cache.removeAll()
    }
}
