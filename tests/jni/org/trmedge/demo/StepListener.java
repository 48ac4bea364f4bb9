package org.trmedge.demo;

/** The JVM shape of android_demo's Kotlin `fun interface StepListener`. */
public interface StepListener {
    boolean onStep(int step, String answer, float haltProbability, double ms);
}
