import CDeciKernels

/// Overrides of the kernels' automatic work split, for tests and tuning only: production code never
/// needs them. Each runs `body` with the override set on the calling thread only (a test forcing
/// one cannot change another test's results) and always restores the automatic choice afterwards,
/// also when `body` throws. Overrides do not nest: the inner one restores the automatic choice, not
/// the outer value.
public enum KernelOverrides {
    /// Runs `body` with Winograd convolutions processing `tiles` output tiles per chunk
    /// (automatically: ~16 MB of transformed tiles), so that small tests cover several chunks.
    public static func withWinogradChunk<R>(tiles: Int, _ body: () throws -> R) rethrows -> R {
        dd_set_winograd_chunk(tiles)
        defer { dd_set_winograd_chunk(0) }
        return try body()
    }

    /// Runs `body` with per-call (not kept) Winograd weights built in blocks of at most `bytes`
    /// (automatically: 48 MB), so that small layers cover several blocks of output channels.
    public static func withWinogradWeightBlock<R>(bytes: Int, _ body: () throws -> R) rethrows -> R {
        dd_set_winograd_weight_block(bytes)
        defer { dd_set_winograd_weight_block(0) }
        return try body()
    }

    /// Runs `body` with attention scoring `rows` queries per tile (automatically: at most 1024 rows
    /// and 64 MB of scores), so that small tests cover several tiles and a ragged last one.
    public static func withAttentionTile<R>(rows: Int, _ body: () throws -> R) rethrows -> R {
        dd_set_attention_tile(rows)
        defer { dd_set_attention_tile(0) }
        return try body()
    }
}

/// Failure injection for tests of the sticky fault (`BackendFault.swift`): a long-running process
/// must survive a kernel or allocation failure. Per thread, like the overrides above; each restores
/// normal operation afterwards, also when `body` throws.
extension KernelOverrides {
    /// Runs `body` with the kernel call (attention, convolution or linear) after the next
    /// `succeeding` ones on this thread failing once, as a oneDNN error would.
    public static func withKernelFailure<R>(after succeeding: Int, _ body: () throws -> R) rethrows -> R {
        dd_testing_fail_kernel_after(succeeding)
        defer { dd_testing_fail_kernel_after(-1) }
        return try body()
    }

    /// Runs `body` with every pooled allocation over `bytes` on this thread failing (the retry
    /// after trimming the pool too), as running out of memory would.
    public static func withAllocationFailure<R>(over bytes: Int, _ body: () throws -> R) rethrows -> R {
        dd_testing_fail_alloc_over(bytes)
        defer { dd_testing_fail_alloc_over(0) }
        return try body()
    }
}

extension KernelOverrides {
    /// Arms a one-shot kernel failure after the next `succeeding` kernel calls on this thread,
    /// without a scope: for a test that arms it from inside a running generation (a progress
    /// callback). `clearFailureInjection()` disarms it.
    public static func armKernelFailure(after succeeding: Int) { dd_testing_fail_kernel_after(succeeding) }

    /// Disarms every failure injection on this thread.
    public static func clearFailureInjection() {
        dd_testing_fail_kernel_after(-1)
        dd_testing_fail_alloc_over(0)
    }
}
