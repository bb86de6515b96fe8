"""The optional pretrained encoder of the tagger: a BERT checkpoint read without a network
(`checkpoint`), BERT as a Keras 3 layer (`bert_encoder`), BERT's tokenisation in core TensorFlow
ops (`wordpiece`)."""
