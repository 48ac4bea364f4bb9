plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

// ExecuTorch's C++ runtime built for Android arm64-v8a and installed (README.md, step 2).
val executorchDir: String = (providers.gradleProperty("executorchDir").orNull
    ?: System.getenv("EXECUTORCH_ANDROID_DIR") ?: "").also {
    require(it.isEmpty() || file("$it/lib/cmake/ExecuTorch").isDirectory) {
        "executorchDir=$it has no lib/cmake/ExecuTorch: build and install ExecuTorch for Android first (README.md)"
    }
}

android {
    namespace = "org.trmedge.demo"
    compileSdk = 36
    ndkVersion = "28.2.13676358"     // the NDK ExecuTorch's CI uses (r28c); build ExecuTorch with the same one

    defaultConfig {
        applicationId = "org.trmedge.demo"
        minSdk = 26
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += "arm64-v8a" }
        externalNativeBuild {
            cmake {
                arguments += listOf("-DEXECUTORCH_INSTALL_DIR=$executorchDir", "-DANDROID_PLATFORM=android-26")
                targets += "trm_jni"
            }
        }
    }
    externalNativeBuild {
        cmake {
            path = file("src/main/cpp/CMakeLists.txt")
            version = "3.31.6"
        }
    }
    buildTypes {
        release {
            isMinifyEnabled = false
            signingConfig = signingConfigs.getByName("debug")   // a demo: installable without a key of its own
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    androidResources { noCompress += listOf("pte", "bin", "json") }   // the bundle is read as it is
}

tasks.named("preBuild") {
    doFirst {
        require(executorchDir.isNotEmpty()) {
            "set executorchDir in gradle.properties (or EXECUTORCH_ANDROID_DIR) to ExecuTorch built for Android (README.md)"
        }
        require(file("src/main/assets/bundle/manifest.json").isFile) {
            "no bundle in src/main/assets/bundle: run android_demo/prepare_assets.sh first (README.md)"
        }
    }
}
