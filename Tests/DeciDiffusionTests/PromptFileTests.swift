// Prompts files as A1111's "prompts from file" script reads them.
import DeciDiffusion
import Testing

@Suite struct PromptFileTests {
    @Test func linesAndOptions() throws {
        let text = """
        a red circle on a blue background

        --prompt "a cat, (fluffy:1.2)" --negative_prompt 'blurry, text' --seed 5 --steps 12
        --negative-prompt "x \\"quoted\\"" --cfg_scale 4.5 --width 128 --height 64 --sampler_name "Euler a" --batch_size 2
          plain line with --dashes inside
        """
        let entries = try PromptFile.parse(text, path: "prompts.txt")
        #expect(entries.count == 4)
        #expect(entries[0] == PromptFileEntry(prompt: "a red circle on a blue background"))
        var second = PromptFileEntry(prompt: "a cat, (fluffy:1.2)")
        (second.negativePrompt, second.seed, second.steps) = ("blurry, text", 5, 12)
        #expect(entries[1] == second)
        #expect(entries[2].prompt == nil && entries[2].negativePrompt == #"x "quoted""# && entries[2].guidanceScale == 4.5)
        #expect(entries[2].width == 128 && entries[2].height == 64 && entries[2].scheduler == "Euler a" && entries[2].imagesPerPrompt == 2)
        #expect(entries[3].prompt == "plain line with --dashes inside")
        // Applied over the command's request: the line's values win, the rest stays.
        var base = GenerationRequest(prompt: "base", negativePrompt: "base negative")
        base.steps = 30
        let applied = entries[2].applied(to: base)
        #expect(applied.prompts == ["base"] && applied.negativePrompts == [#"x "quoted""#] && applied.steps == 30 && applied.width == 128)
    }

    @Test func errorsNameTheLine() {
        for (line, fragment) in [("--seed abc", "prompts.txt:1: --seed"), ("--styles x", "unknown option --styles"),
                                 ("--prompt", "needs a value"), ("--prompt \"open", "unclosed")] {
            do {
                _ = try PromptFile.parse(line, path: "prompts.txt")
                Issue.record("\(line) was accepted")
            } catch {
                #expect(error.description.contains(fragment), "\(error)")
            }
        }
    }
}
