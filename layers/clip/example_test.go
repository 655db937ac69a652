package clip_test

import (
	"fmt"
	"log"
	"math"

	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/images"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

// Zero-shot classification of one image, as in the article: encode the image and one
// prompt per label, then take the label whose prompt is most similar. The directory
// is any layout weights.Load reads (e.g. what `gorgoclip fetch model
// openai/clip-vit-base-patch32` printed); it is not run as a test.
func Example() {
	m, err := clip.Load("models/clip-vit-base-patch32")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config()
	R, E := cfg.Vision.ImageResolution, cfg.EmbedDim

	pixels := make([]float32, 3*R*R) // [1,3,R,R]
	if err := images.PreprocessFile("dog.jpg", R, pixels); err != nil {
		log.Fatal(err)
	}
	img, err := m.EncodeImages(pixels, 1) // [1,E]
	if err != nil {
		log.Fatal(err)
	}

	tok, err := tokenizer.Load("models/clip-vit-base-patch32/merges.txt")
	if err != nil {
		log.Fatal(err)
	}
	labels := []string{"dog", "cat", "car"}
	prompts := make([]string, len(labels))
	for i, l := range labels {
		prompts[i] = "a photo of a " + l
	}
	ids, err := tok.Tokenize(prompts, cfg.Text.ContextLength, true) // [3,77]
	if err != nil {
		log.Fatal(err)
	}
	txt, err := m.EncodeTexts(ids, len(prompts)) // [3,E]
	if err != nil {
		log.Fatal(err)
	}

	clip.L2Normalize(img, E)
	clip.L2Normalize(txt, E)
	logits, err := clip.Logits(img, txt, E, float32(math.Exp(float64(m.LogitScale())))) // [1,3]
	if err != nil {
		log.Fatal(err)
	}
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	fmt.Println("prediction:", labels[best])
}
