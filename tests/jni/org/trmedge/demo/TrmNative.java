package org.trmedge.demo;

/** The JVM signatures of android_demo's Kotlin `object TrmNative` (its @JvmStatic external funs),
 *  so that tests/test_android_jni.py can load libtrm_jni.so on a desktop JVM. The test checks that
 *  the two declare the same functions. */
public final class TrmNative {
    private TrmNative() {}

    public static native long open(String bundleDir, int threads);

    public static native int gridSize(long handle);

    public static native String solve(long handle, String puzzle, String halting, double threshold,
                                      StepListener listener);

    public static native String solveViews(long handle, String puzzle, String halting, double threshold, int views,
                                           String policy, int agree, int wave, int budget);

    public static native String solveArc(long handle, String taskJson, String taskId, int views, String policy,
                                         int agree, int wave, int budget);

    public static native int defaultViews(long handle);

    public static native void close(long handle);
}
