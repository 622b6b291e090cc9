// Linear cross-fades across the overlap of neighbouring tiles, as diffusers' AutoencoderKL
// `blend_v` / `blend_h` compute them.

extension Ops {
    /// Writes into `b` in place: its first `extent` rows fade in from the last `extent` rows of `a`
    /// (the tile above), row `y` becoming `a * (1 - y / extent) + b * (y / extent)`. The extent is
    /// cut to the shorter tile. Both NHWC with equal width and channels.
    public static func blendVertical(top a: Tensor, into b: Tensor, extent: Int) {
        precondition(a.rank == 4 && b.rank == 4, "blend: tiles must be NHWC, got \(a.shape) and \(b.shape)")
        let e = min(a.shape[1], b.shape[1], extent)
        let (n, ah, bh, w, c) = (b.shape[0], a.shape[1], b.shape[1], b.shape[2], b.shape[3])
        precondition(a.shape[0] == n && a.shape[2] == w && a.shape[3] == c, "blend: tiles \(a.shape) and \(b.shape) do not line up")
        if Fault.skips("blendVertical", a, b) { return }
        let rowLen = w * c
        for y in 0..<e {
            let (wa, wb) = blendWeights(y, e)
            for i in 0..<n {
                let pa = a.pointer.advanced(by: (i * ah + ah - e + y) * rowLen)
                let pb = b.pointer.advanced(by: (i * bh + y) * rowLen)
                for k in 0..<rowLen { pb[k] = pa[k] * wa + pb[k] * wb }
            }
        }
    }

    /// Writes into `b` in place: its first `extent` columns fade in from the last `extent` columns
    /// of `a` (the tile to its left), as ``blendVertical(top:into:extent:)`` does for rows.
    public static func blendHorizontal(left a: Tensor, into b: Tensor, extent: Int) {
        precondition(a.rank == 4 && b.rank == 4, "blend: tiles must be NHWC, got \(a.shape) and \(b.shape)")
        let e = min(a.shape[2], b.shape[2], extent)
        let (n, h, aw, bw, c) = (b.shape[0], b.shape[1], a.shape[2], b.shape[2], b.shape[3])
        precondition(a.shape[0] == n && a.shape[1] == h && a.shape[3] == c, "blend: tiles \(a.shape) and \(b.shape) do not line up")
        if Fault.skips("blendHorizontal", a, b) { return }
        for x in 0..<e {
            let (wa, wb) = blendWeights(x, e)
            for r in 0..<(n * h) {
                let pa = a.pointer.advanced(by: (r * aw + aw - e + x) * c)
                let pb = b.pointer.advanced(by: (r * bw + x) * c)
                for k in 0..<c { pb[k] = pa[k] * wa + pb[k] * wb }
            }
        }
    }

    // The two factors in double, then float32, as torch scales a float tensor by a Python float.
    private static func blendWeights(_ i: Int, _ e: Int) -> (Float, Float) {
        let t = Double(i) / Double(e)
        return (Float(1 - t), Float(t))
    }
}
